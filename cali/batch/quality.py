"""Great Expectations on one day of the archive: the suite files beside this module, an ephemeral context.

Two suites: `archive_records_suite.json` on one row per archived record, `archive_day_suite.json` on one row
for the whole day (its DLQ ratio), so a day with no records at all is still checked.

The archive holds records the readers already validated, so these checks catch what validation cannot
see (duplicates, a day partition holding another day's events, a DLQ that grows) and anything another
writer put there. The frame holds the fields the suite checks: raw values as they are in the JSON, so
a null or a wrong type is seen as such; the message by its type and length only, to keep a day small.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from cali.core.archive import DLQ_PREFIX, RAW_PREFIX
from cali.core.records import Level

RECORDS_SUITE = Path(__file__).with_name("archive_records_suite.json")
DAY_SUITE = Path(__file__).with_name("archive_day_suite.json")
DAY_SUITE_NAME = "cali_archive_day"
FIELDS = ("timestamp", "level", "service", "event_id")
SAMPLE = 5


class ArchiveReader(Protocol):
    """Reading the archive bucket (cali.sinks.s3_archive.S3Archive is one)."""

    def list_keys(self, prefix: str = "") -> list[str]: ...
    def get(self, key: str) -> bytes: ...


def day_prefix(kind: str, day: str) -> str:
    return f"{RAW_PREFIX if kind == 'raw' else DLQ_PREFIX}dt={date.fromisoformat(day).isoformat()}/"


def _bodies(reader: ArchiveReader, keys: Sequence[str], threads: int) -> Iterator[bytes]:
    """Objects decompressed, in key order, a few fetched ahead (S3 latency), never the whole day at once."""
    def fetch(key: str) -> bytes:
        return gzip.decompress(reader.get(key))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        window = threads * 2
        futures = [pool.submit(fetch, k) for k in keys[:window]]
        for i in range(len(keys)):
            body = futures[i].result()
            futures[i] = None  # type: ignore[call-overload]
            if i + window < len(keys):
                futures.append(pool.submit(fetch, keys[i + window]))
            yield body


def scan_day(reader: ArchiveReader, day: str, threads: int = 4) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """The suite's columns for the day's raw records, and the counts (objects, records, DLQ lines)."""
    cols: dict[str, list[Any]] = {f: [] for f in (*FIELDS, "message", "message_chars")}
    interned: dict[Any, Any] = {}
    raw_keys = sorted(reader.list_keys(day_prefix("raw", day)))
    for body in _bodies(reader, raw_keys, threads):
        for line in body.split(b"\n"):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                doc = None
            if not isinstance(doc, dict):
                doc = {}  # not a record at all: every field counts as missing
            for f in FIELDS:
                v = doc.get(f)
                if f in ("level", "service") and isinstance(v, str):
                    v = interned.setdefault(v, v)  # a day has a handful of each: one string object apiece
                cols[f].append(v)
            msg = doc.get("message")
            cols["message"].append("" if isinstance(msg, str) else msg)
            cols["message_chars"].append(len(msg) if isinstance(msg, str) else None)
    dlq_keys = sorted(reader.list_keys(day_prefix("dlq", day)))
    dlq = sum(sum(1 for ln in body.split(b"\n") if ln.strip()) for body in _bodies(reader, dlq_keys, threads))
    return cols, {"objects": len(raw_keys), "records": len(cols["level"]), "dlq_objects": len(dlq_keys), "dlq": dlq}


def suite_parameters(day: str, dlq_ratio_max: float, known_services: Sequence[str], message_max_chars: int,
                     timestamp_slack_s: float) -> dict[str, Any]:
    import pandas as pd

    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    slack = timedelta(seconds=timestamp_slack_s)
    return {"levels": [lv.value for lv in Level], "ts_min": pd.Timestamp(start - slack),
            "ts_max": pd.Timestamp(start + timedelta(days=1) + slack - timedelta(microseconds=1)),
            "known_services": list(known_services), "message_max_chars": message_max_chars,
            "dlq_ratio_max": dlq_ratio_max}


def load_suite(path: Path = RECORDS_SUITE, known_services: Sequence[str] = ()) -> dict[str, Any]:
    """The suite file as a dict; the known-service check is left out when no known services are set."""
    doc = orjson.loads(path.read_bytes())
    if not known_services:
        doc["expectations"] = [e for e in doc["expectations"]
                               if e["kwargs"].get("value_set") != {"$PARAMETER": "known_services"}]
    return doc


def frames(columns: dict[str, list[Any]], counts: dict[str, int]) -> tuple[Any, Any]:
    """The records frame (object columns: raw values, whatever their type) and the one-row day frame."""
    import pandas as pd

    records = pd.DataFrame({k: pd.Series(v, dtype=object if k != "message_chars" else "float64")
                            for k, v in columns.items()})
    strings = records["timestamp"].where(records["timestamp"].map(lambda v: isinstance(v, str)).astype(bool))
    records["ts"] = pd.to_datetime(strings, utc=True, errors="coerce", format="ISO8601")
    total = counts["records"] + counts["dlq"]
    day = pd.DataFrame([{"records": counts["records"], "dlq": counts["dlq"],
                         "dlq_ratio": counts["dlq"] / total if total else 0.0}])
    return records, day


def validate(batches: Sequence[tuple[dict[str, Any], Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs each (suite, frame) in one ephemeral GX context; one result per expectation, in suite order."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("archive")
    out: list[dict[str, Any]] = []
    for suite_doc, frame in batches:
        name = suite_doc["name"]
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=suite_doc["expectations"],
                                                   meta=suite_doc.get("meta") or {}))
        run = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = run.run(batch_parameters={"dataframe": frame}, expectation_parameters=params,
                         result_format="SUMMARY")
        out += [_check(r) | {"suite": name} for r in result.results]
    return out


def _check(r: Any) -> dict[str, Any]:
    cfg, res = r.expectation_config, r.result or {}
    exc = r.exception_info or {}
    severity = getattr(cfg.severity, "value", str(cfg.severity or "critical"))
    return {"check": (cfg.meta or {}).get("check", cfg.type), "expectation": cfg.type,
            "column": cfg.kwargs.get("column"), "severity": severity, "success": bool(r.success),
            "unexpected_count": _plain(res.get("unexpected_count")),
            "unexpected_percent": _plain(res.get("unexpected_percent")),
            "observed_value": _plain(res.get("observed_value")),
            "sample": [_plain(v) for v in (res.get("partial_unexpected_list") or [])[:SAMPLE]],
            "error": exc.get("exception_message") if exc.get("raised_exception") else None}


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, str | bytes):  # numpy scalars from pandas
        v = v.item()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)[:200]


def check_day(reader: ArchiveReader, day: str, *, dlq_ratio_max: float = 0.01, known_services: Sequence[str] = (),
              message_max_chars: int = 32_768, timestamp_slack_s: float = 300.0) -> dict[str, Any]:
    """Reads the day's archive and DLQ, validates it, returns the quality section of the report."""
    started = time.perf_counter()
    columns, counts = scan_day(reader, day)
    scanned = time.perf_counter()
    params = suite_parameters(day, dlq_ratio_max, known_services, message_max_chars, timestamp_slack_s)
    records, day_frame = frames(columns, counts)
    checks = validate([(load_suite(RECORDS_SUITE, known_services), records), (load_suite(DAY_SUITE), day_frame)],
                      params)
    failed = [c for c in checks if not c["success"] and c["severity"] == "critical"]
    warnings = [c for c in checks if not c["success"] and c["severity"] != "critical"]
    total = counts["records"] + counts["dlq"]
    return {"day": day, "success": not failed, "failures": len(failed), "warnings": len(warnings),
            **counts, "dlq_ratio": round(counts["dlq"] / total, 6) if total else 0.0,
            "known_services_checked": bool(known_services), "checks": checks,
            "seconds": {"scan": round(scanned - started, 3), "validate": round(time.perf_counter() - scanned, 3)}}
