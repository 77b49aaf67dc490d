"""One contract for both index adapters: SQLite FTS5 for real, OpenSearch through the loopback OpenSearch,
which checks each request against OpenSearch's documented formats (tests/support/fake_opensearch.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.index import IncidentQuery, LogQuery, TrendQuery, log_document
from cali.core.records import Level
from cali.index.port import IndexUnavailable
from tests.support import needs

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "opensearch"])
def index(request, tmp_path):
    if request.param == "sqlite":
        from cali.index.sqlite_fts import SqliteIndex

        ix = SqliteIndex(tmp_path / "index.db")
        yield ix
        ix.close()
        return
    yield from _opensearch_index()


@pytest.fixture
def opensearch():
    yield from _opensearch_index()


def _opensearch_index():
    needs.module("opensearchpy", "opensearch-py is not installed (pip install opensearch-py)")
    from cali.index.opensearch import OpenSearchIndex, client_from_settings
    from tests.support.fake_opensearch import FakeOpenSearch

    server = FakeOpenSearch().start()
    ix = OpenSearchIndex(client_from_settings(server.url, auth="none", region="us-east-1"), refresh="wait_for",
                         sleep=lambda s: None)
    ix.server = server  # type: ignore[attr-defined]
    yield ix
    ix.close()
    server.stop()
    assert server.violations == [], "requests OpenSearch would refuse:\n" + "\n".join(server.violations)


def row(i: int, message: str, *, level: str = "INFO", service: str = "checkout", at: datetime | None = None,
        stack: str | None = None, key: str | None = None, **extra) -> dict:
    r = {"timestamp": at or T0 + timedelta(seconds=i), "level": level, "service": service, "message": message,
         "event_id": f"shardId-000000000001:{10**20 + i}:0", "host": "web-1",
         "attributes": {"log_file": "/var/log/app.log", "log_offset": 100 * i, "thread": "main"}, **extra}
    if stack:
        r["stack"] = stack
    if key:
        r["incident_key"] = key
    return r


def write(index, rows):
    result = index.write_logs([log_document(r) for r in rows])
    assert result.rejected == []
    return result


def test_words_match_in_message_or_stack_every_word_case_and_punctuation_ignored(index):
    write(index, [
        row(1, "Connection pool exhausted after 30000ms", level="ERROR",
            stack="java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available\n"
                  "\tat com.zaxxer.hikari.pool.HikariPool.createTimeout"),
        row(2, "payment accepted for order 42"),
        row(3, "Payment DECLINED: card_expired", level="WARN", service="payments"),
    ])
    assert [r["event_id"][-3:] for r in index.search_logs(LogQuery(text="payment")).rows] == ["3:0", "2:0"]
    assert index.search_logs(LogQuery(text="connection hikaripool")).total == 1  # one word in each field
    assert index.search_logs(LogQuery(text="POOL, exhausted!")).total == 1
    assert index.search_logs(LogQuery(text="pool declined")).total == 0  # every word must match
    assert index.search_logs(LogQuery(text="card expired")).total == 1  # _ separates words
    hit = index.search_logs(LogQuery(text="hikari")).rows[0]
    assert hit["stack"].startswith("java.sql") and hit["level"] == "ERROR" and hit["host"] == "web-1"
    assert hit["log_file"] == "/var/log/app.log" and hit["log_offset"] == 100
    assert hit["attributes"] == {"thread": "main"} and hit["origin"] == "cali"


def test_only_the_head_of_a_long_stack_is_searched(index):
    frames = "\n".join(f"\tat com.example.Frame{i}.call(Frame.java:{i})" for i in range(200))
    write(index, [row(1, "boom", level="ERROR", stack="java.lang.IllegalStateException: early\n" + frames +
                      "\nCaused by: java.io.ZzzTopException: deep")])
    assert index.search_logs(LogQuery(text="IllegalStateException")).total == 1
    assert index.search_logs(LogQuery(text="ZzzTopException")).total == 0


def test_filters_by_service_level_time_and_incident(index):
    write(index, [row(i, f"event {i}", level=["INFO", "WARN", "ERROR"][i % 3], service=["a", "b"][i % 2],
                      key="a|ERROR|g1" if i % 6 == 2 else None) for i in range(30)])
    page = index.search_logs(LogQuery(services=("a",), levels=("ERROR",)))
    assert page.total == 5 and {r["service"] for r in page.rows} == {"a"}
    assert {r["level"] for r in page.rows} == {"ERROR"}
    window = index.search_logs(LogQuery(start=T0 + timedelta(seconds=10), end=T0 + timedelta(seconds=20)))
    assert window.total == 10
    assert [r["message"] for r in window.rows][0] == "event 19" and window.rows[-1]["message"] == "event 10"
    by_key = index.search_logs(LogQuery(incident_key="a|ERROR|g1"))
    assert by_key.total == 5 and all(r["fingerprint"] == by_key.rows[0]["fingerprint"] for r in by_key.rows)


def test_newest_first_and_pages_cover_every_row_once(index):
    same = T0 + timedelta(minutes=5)
    rows = [row(i, f"line {i}", at=same if i % 4 == 0 else None) for i in range(23)]
    write(index, list(reversed(rows)))
    seen, cursor = [], None
    while True:
        page = index.search_logs(LogQuery(limit=5, cursor=cursor))
        seen += [r["event_id"] for r in page.rows]
        assert page.total == 23
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23
    times = [index.search_logs(LogQuery(limit=50)).rows[i]["@timestamp"] for i in range(23)]
    assert times == sorted(times, reverse=True)


def test_a_repeat_overwrites_and_a_bad_document_is_rejected_with_its_reason(index):
    write(index, [row(1, "first"), row(2, "second")])
    write(index, [row(1, "first")])
    assert index.search_logs(LogQuery()).total == 2
    bad = log_document(row(3, "bad time"))
    bad["@timestamp"] = "yesterday-ish"
    offset = log_document(row(5, "bad offset"))
    offset["log_offset"] = "abc"
    result = index.write_logs([log_document(row(4, "good")), bad, offset])
    assert result.written == 1 and [i for i, _ in result.rejected] == [1, 2]
    assert "[@timestamp]" in result.rejected[0][1] and "[log_offset]" in result.rejected[1][1]
    assert index.search_logs(LogQuery(text="good")).total == 1


def test_trend_counts_per_bucket_by_level_and_by_service_with_zeros(index):
    rows = []
    for minute in (0, 1, 3):
        for j, level in enumerate(["ERROR", "ERROR", "WARN"]):
            rows.append(row(minute * 100 + j, "x", level=level, service="api" if j else "web",
                            at=T0 + timedelta(minutes=minute, seconds=j)))
    write(index, rows)
    t = index.trend(TrendQuery(start=T0, end=T0 + timedelta(minutes=5), interval_s=60, by="level"))
    assert len(t.buckets) == 5 and t.buckets[1] - t.buckets[0] == 60_000
    assert t.series == {"ERROR": [2, 2, 0, 2, 0], "WARN": [1, 1, 0, 1, 0]}
    by_service = index.trend(TrendQuery(start=T0, end=T0 + timedelta(minutes=4), interval_s=120, by="service",
                                        levels=("ERROR",)))
    assert by_service.series == {"api": [2, 1], "web": [2, 1]}


def alert(kind: AlertKind, n: int, *, count: int = 1, suppressed: int = 0, minutes: int = 0,
          key: str = "checkout|ERROR|7", analysis=None) -> Alert:
    first = T0 + timedelta(minutes=minutes)
    window = f"{key}#shardId-1:{n}:0"
    return Alert(alert_id=f"{window}#{'first' if kind is AlertKind.ANALYSIS else kind.value}" +
                 ("#analysis" if kind is AlertKind.ANALYSIS else ""), kind=kind, incident_key=key,
                 fingerprint="f" * 16, service=key.split("|")[0], level=Level.ERROR, severity=Severity.HIGH,
                 message="Connection pool exhausted after 30000ms\nmore",
                 template="Connection pool exhausted after <num>ms",
                 stack_head=["java.sql.SQLException: pool"], count=count, suppressed=suppressed, first_seen=first,
                 last_seen=first + timedelta(seconds=count), created_at=first + timedelta(seconds=count),
                 stack="java.sql.SQLException: pool\n\tat x" if kind is AlertKind.FIRST else None, analysis=analysis,
                 parent_alert_id=f"{window}#first" if kind is AlertKind.ANALYSIS else None)


def test_incidents_merge_alerts_count_windows_and_keep_the_analysis(index):
    analysis = {"probable_cause": "the pool is too small", "similar": [{"id": "inc-0007", "category": "db-pool",
                                                                        "score": 0.8}]}
    for a in (alert(AlertKind.FIRST, 1), alert(AlertKind.ANALYSIS, 1, analysis=analysis),
              alert(AlertKind.SUMMARY, 1, count=12, suppressed=11), alert(AlertKind.FIRST, 2, minutes=10)):
        index.add_alert(a)
    index.add_alert(alert(AlertKind.SUMMARY, 1, count=12, suppressed=11))  # redelivered: no change
    index.add_alert(alert(AlertKind.FIRST, 9, key="search|ERROR|3", minutes=3))
    doc = index.incident("checkout|ERROR|7")
    assert doc["count"] == 13 and doc["alerts_total"] == 4 and doc["status"] == "open"
    assert doc["analysis"]["probable_cause"] == "the pool is too small"
    assert doc["title"] == "Connection pool exhausted after 30000ms" and doc["stack"].startswith("java.sql")
    assert doc["first_seen"].startswith("2026-11-26T12:00:00") and doc["last_seen"].startswith("2026-11-26T12:10:01")
    assert [d["incident_key"] for d in index.incidents(IncidentQuery())] == ["checkout|ERROR|7", "search|ERROR|3"]
    assert [d["incident_key"] for d in index.incidents(IncidentQuery(services=("search",)))] == ["search|ERROR|3"]
    assert [d["incident_key"] for d in index.incidents(IncidentQuery(text="pool exhausted", limit=1))] == \
        ["checkout|ERROR|7"]
    assert index.incident("nope|ERROR|1") is None


def test_resolving_keeps_the_note_and_a_later_first_alert_reopens(index):
    index.add_alert(alert(AlertKind.FIRST, 1))
    doc = index.resolve_incident("checkout|ERROR|7", note="raised the pool to 40", at=T0 + timedelta(minutes=1),
                                 category="db-pool", kb_id="res-1")
    assert doc["status"] == "resolved" and doc["resolution"]["note"] == "raised the pool to 40"
    assert [d["incident_key"] for d in index.incidents(IncidentQuery(status="resolved"))] == ["checkout|ERROR|7"]
    assert index.incidents(IncidentQuery(status="open")) == []
    index.add_alert(alert(AlertKind.FIRST, 5, minutes=30))
    again = index.incident("checkout|ERROR|7")
    assert again["status"] == "open" and again["resolution"]["kb_id"] == "res-1"
    with pytest.raises(KeyError):
        index.resolve_incident("nope|ERROR|1", note="x", at=T0)
    with pytest.raises(ValueError):
        index.resolve_incident("checkout|ERROR|7", note="  ", at=T0)


# -- OpenSearch only: what the loopback server can show about the wire --------------------------------------
def test_opensearch_retries_overloaded_items_and_reports_a_down_cluster(opensearch):
    index, server = opensearch, opensearch.server
    doc = log_document(row(1, "retry me"))
    server.item_failures[doc["event_id"]] = [429, 429]
    assert index.write_logs([doc]).written == 1
    server.item_failures[doc["event_id"]] = [429] * 10
    result = index.write_logs([doc])
    assert result.written == 0 and "429" in result.rejected[0][1]
    server.fail_status = 503
    with pytest.raises(IndexUnavailable, match="_bulk"):
        index.write_logs([doc])


def test_opensearch_setup_declares_daily_indices_firehose_fits_and_retention_updates(opensearch):
    from cali.index import opensearch_mapping as m
    from cali.index.opensearch import OpenSearchIndex

    index, server = opensearch, opensearch.server
    write(index, [row(1, "x")])
    assert set(server.indices) >= {"cali-logs-2026-11-26"}
    policy, seq = server.policies[m.ISM_POLICY]
    assert policy["policy"]["states"][0]["transitions"][0]["conditions"] == {"min_index_age": "14d"}
    OpenSearchIndex(index.client, retention_days=30).setup()  # changed: updated with seq_no/primary_term
    assert server.policies[m.ISM_POLICY][1] == seq + 1
    OpenSearchIndex(index.client, retention_days=30).setup()  # unchanged: not written again
    assert server.policies[m.ISM_POLICY][1] == seq + 1
    # What Fluent Bit's kinesis_firehose output sends (the wire record), as Firehose indexes it.
    raw = {"time": "2026/11/26 12:00:05", "level": "error", "service": "nginx", "message": "upstream timed out",
           "log_file": "/var/log/nginx/error.log", "log_offset": 512, "host": "node-1", "pid": "7",
           "@ingested": "2026-11-26T12:00:05.120Z"}
    status, resp = server.handle("POST", "/cali-logs-2026-11-26/_doc", b"", {})
    assert status == 400  # no id-less POST in this API subset; Firehose uses _bulk
    import json

    body = (json.dumps({"index": {"_index": "cali-logs-2026-11-26", "_id": "fh-1"}}) + "\n" + json.dumps(raw) +
            "\n").encode()
    server.violations.clear()
    status, resp = server.handle("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
    assert status == 200 and not resp["errors"], resp
    stored = server.indices["cali-logs-2026-11-26"].docs["fh-1"]
    assert stored["origin"] == "firehose" and stored["level"] == "ERROR"
    assert stored["@timestamp"].startswith("2026-11-26T12:00:05")
    assert index.search_logs(LogQuery(text="upstream")).total == 0  # the console counts CALI's copy only


def test_many_events_in_one_millisecond_are_all_kept_and_paged(index):
    rows = [row(i, f"burst {i}", at=T0) for i in range(1500)]
    write(index, rows[:700])
    write(index, rows)  # overlapping batches: repeats ignored, the rest added
    seen, cursor = set(), None
    while True:
        page = index.search_logs(LogQuery(text="burst", limit=400, cursor=cursor))
        seen |= {r["event_id"] for r in page.rows}
        cursor = page.next_cursor
        if cursor is None:
            break
    assert page.total == 1500 and len(seen) == 1500
