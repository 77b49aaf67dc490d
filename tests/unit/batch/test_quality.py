"""The Great Expectations suite on a day of the archive: each injected defect counted exactly."""

from __future__ import annotations

import orjson
import pytest

from cali.batch.quality import DAY_SUITE, RECORDS_SUITE, check_day, load_suite
from cali.core.archive import DeadLetter, encode_jsonl_gz
from tests.support import needs

DAY = "2026-11-26"


class MemoryReader:
    def __init__(self, objects):
        self.objects = objects

    def list_keys(self, prefix=""):
        return sorted(k for k in self.objects if k.startswith(prefix))

    def get(self, key):
        return self.objects[key]


def rec(i, **over):
    r = {"timestamp": f"{DAY}T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "level": "INFO", "service": "orders-api",
         "message": f"request {i} ok", "event_id": f"shardId-0:{1000 + i}:0"}
    r.update(over)
    return {k: v for k, v in r.items() if v is not ...}


def day_objects(rows, dlq=0):
    from datetime import UTC, datetime

    objects = {f"raw/dt={DAY}/hour=10/shardId-0-1-{len(rows)}.jsonl.gz": encode_jsonl_gz(orjson.dumps(r) for r in rows)}
    if dlq:
        dead = [DeadLetter("bad_json", "x", "shardId-0", str(i), 0, b"{", datetime(2026, 11, 26, tzinfo=UTC)).to_json()
                for i in range(dlq)]
        objects[f"dlq/dt={DAY}/shardId-0-1-2.jsonl.gz"] = encode_jsonl_gz(dead)
    objects["raw/dt=2026-11-27/hour=00/other-day.jsonl.gz"] = encode_jsonl_gz([orjson.dumps(rec(0, level=None))])
    return objects


@pytest.fixture(scope="module", autouse=True)
def _gx():
    needs.module("great_expectations", "great-expectations is not installed: pip install -e .")


def by_check(result):
    return {c["check"]: c for c in result["checks"]}


def test_a_clean_day_passes():
    result = check_day(MemoryReader(day_objects([rec(i) for i in range(200)], dlq=1)), DAY)
    assert result["success"] and result["failures"] == 0 and result["records"] == 200 and result["dlq"] == 1
    assert result["dlq_ratio"] == round(1 / 201, 6)


def test_each_defect_is_counted_exactly():
    rows = [rec(i) for i in range(300)]
    rows[3] = rec(3, service=None)                        # null field
    rows[4] = rec(4, message=...)                         # missing field
    rows[10] = rec(10, level="LOUD")                      # bad level
    rows[11] = rec(11, level=5)                           # wrong type
    rows[20] = rec(20, timestamp="2026-11-24T09:00:00Z")  # another day
    rows[21] = rec(21, timestamp="2026-11-28T00:10:00Z")
    rows[22] = rec(22, timestamp="yesterday noon")        # does not parse
    rows[30] = rec(30, event_id=rows[31]["event_id"])     # duplicate event_id
    rows[40] = rec(40, message="x" * 50)
    result = check_day(MemoryReader(day_objects(rows)), DAY, message_max_chars=40)
    checks = by_check(result)
    assert checks["service is present"]["unexpected_count"] == 1
    assert checks["message is present"]["unexpected_count"] == 1
    assert checks["level is in the allowed set"]["unexpected_count"] == 2
    assert checks["level is a string"]["unexpected_count"] == 1
    assert checks["timestamp falls inside the partition's date"]["unexpected_count"] == 2
    assert checks["timestamp parses (ISO-8601)"]["unexpected_count"] == 1
    assert checks["event_id is unique"]["unexpected_count"] == 2  # both rows of the pair
    assert checks["message length is within bounds"]["unexpected_count"] == 1
    failed = {c["check"] for c in result["checks"] if not c["success"]}
    assert result["failures"] == len(failed) == 8 and not result["success"]


def test_unknown_service_is_a_warning_only_and_skipped_without_a_known_set():
    rows = [rec(i) for i in range(50)] + [rec(60, service="stranger")]
    warned = check_day(MemoryReader(day_objects(rows)), DAY, known_services=["orders-api"])
    check = by_check(warned)["service is a known one"]
    assert check["severity"] == "warning" and check["unexpected_count"] == 1 and check["sample"] == ["stranger"]
    assert warned["success"] and warned["warnings"] == 1
    assert "service is a known one" not in by_check(check_day(MemoryReader(day_objects(rows)), DAY))


def test_dlq_ratio_over_the_threshold_fails():
    result = check_day(MemoryReader(day_objects([rec(i) for i in range(90)], dlq=10)), DAY, dlq_ratio_max=0.05)
    check = by_check(result)["the day's DLQ ratio is below the threshold"]
    assert not check["success"] and check["unexpected_count"] == 1 and check["sample"] == [pytest.approx(0.1)]


def test_arrival_slack_around_midnight():
    rows = [rec(0, timestamp="2026-11-25T23:58:00Z"), rec(1, timestamp="2026-11-27T00:04:00Z")]
    assert check_day(MemoryReader(day_objects(rows)), DAY, timestamp_slack_s=300)["success"]
    assert not check_day(MemoryReader(day_objects(rows)), DAY, timestamp_slack_s=60)["success"]


def test_suite_files_are_valid_gx():
    gx = needs.module("great_expectations", "great-expectations is not installed")
    for path, least in ((RECORDS_SUITE, 15), (DAY_SUITE, 2)):
        doc = load_suite(path, known_services=["a"])
        suite = gx.ExpectationSuite(name=doc["name"], expectations=doc["expectations"])
        assert len(suite.expectations) == len(doc["expectations"]) >= least


def test_a_day_without_records_fails_only_on_its_dlq():
    empty = check_day(MemoryReader({}), DAY)
    assert empty["success"] and empty["records"] == 0
    assert {c["check"] for c in empty["checks"] if not c["success"]} == {"the day has archived records"}
    only_dlq = check_day(MemoryReader({k: v for k, v in day_objects([], dlq=3).items() if k.startswith("dlq/")}), DAY)
    dlq_check = by_check(only_dlq)["the day's DLQ ratio is below the threshold"]
    assert only_dlq["failures"] == 1 and dlq_check["sample"] == [1.0]
