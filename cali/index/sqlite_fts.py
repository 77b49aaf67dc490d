"""The embedded index: one SQLite file in WAL mode, FTS5 over message and stack, retention by age and size.

Readers, the alerter and the console open the same file from their own processes: WAL lets them read
while one of them writes. Per-minute counts by service and level are kept by triggers in the same
transaction as the rows, so trend charts never scan the logs.

Search semantics (shared with the OpenSearch adapter): words are runs of letters and digits, compared
case-insensitively, every word must occur in the message or in the first 2,000 characters of the stack
(the exception lines; the frames below add cost, not findability). FTS5 `detail=none` keeps only which
rows hold a word, the smallest and fastest index for that. Newest first; rows of the same millisecond in
their id order (the OpenSearch adapter: by event id); the cursor is opaque to callers.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cali.core.alerts import Alert
from cali.core.index import (
    STACK_SEARCHED_CHARS,
    TOTAL_CAP,
    IncidentQuery,
    LogPage,
    LogQuery,
    Trend,
    TrendQuery,
    incident_matches,
    log_document_problem,
    merge_alert,
    resolve,
    to_millis,
    trend_buckets,
    words,
)
from cali.core.ports import Health
from cali.index.port import IndexUnavailable, WriteResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, ts INTEGER NOT NULL, level TEXT NOT NULL,
  service TEXT NOT NULL, incident_key TEXT, message TEXT NOT NULL, stack TEXT, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS logs_service ON logs(service, level, id);
CREATE INDEX IF NOT EXISTS logs_incident ON logs(incident_key, ts) WHERE incident_key IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(message, stack, content='logs', content_rowid='id',
  detail='none', tokenize='unicode61 remove_diacritics 0');
CREATE TABLE IF NOT EXISTS counts (
  minute INTEGER NOT NULL, service TEXT NOT NULL, level TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (minute, service, level)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS logs_ai AFTER INSERT ON logs BEGIN
  INSERT INTO logs_fts(rowid, message, stack) VALUES (new.id, new.message, substr(new.stack, 1, 2000));
  INSERT INTO counts VALUES (new.ts / 60000, new.service, new.level, 1)
    ON CONFLICT (minute, service, level) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS logs_ad AFTER DELETE ON logs BEGIN
  INSERT INTO logs_fts(logs_fts, rowid, message, stack) VALUES ('delete', old.id, old.message,
    substr(old.stack, 1, 2000));
  UPDATE counts SET n = n - 1 WHERE minute = old.ts / 60000 AND service = old.service AND level = old.level;
END;
CREATE TABLE IF NOT EXISTS incidents (
  incident_key TEXT PRIMARY KEY, last_seen TEXT NOT NULL, status TEXT NOT NULL, service TEXT NOT NULL,
  doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_seen ON incidents(last_seen);
"""
_INSERT = ("INSERT OR IGNORE INTO logs (id, event_id, ts, level, service, incident_key, message, stack, doc) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
# Row ids are time-ordered: ts in ms times 4096, plus a slot from the event id. Newest-first is then the
# primary key's own order, and FTS5 walks its matches by rowid, newest first, stopping at the page size.
# A repeat of an event (same time, same event id) lands on its own id and is ignored: no second index on
# event_id to keep up to date. Two different events on one id (same ms, same slot) are told apart by
# event_id, and the later one takes the next free slot.
_SLOTS = 4096
_COUNT_SCAN = 20_000  # word matches a filtered count walks at most
_FILTER_DRIVES_BELOW = 5_000  # rows a filter keeps, below which they are read and matched here
_DELETE_CHUNK = 5_000


class SqliteIndex:
    def __init__(self, path: str | Path, *, retention_days: int = 14, max_bytes: int = 2 << 30,
                 busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.retention = timedelta(days=retention_days)
        self.max_bytes = max_bytes
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqliteIndex({self.path})"

    # -- connection --------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            conn.execute("PRAGMA cache_size=-32000")
            conn.executescript(_SCHEMA)
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        from cali.state import immediate_transaction

        def locked(exc: Exception) -> IndexUnavailable:  # past busy_timeout: another writer holds it
            return IndexUnavailable(f"SQLite index {self.path}: BEGIN IMMEDIATE failed: {exc}")

        with immediate_transaction(self._conn(), locked) as conn:
            yield conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writes ------------------------------------------------------------------------------------------
    def write_logs(self, docs: Sequence[dict[str, Any]]) -> WriteResult:
        """INSERT in one transaction (a repeat of an event is ignored); a document that cannot be read is
        rejected."""
        result = WriteResult()
        params = []
        for i, d in enumerate(docs):
            problem = log_document_problem(d)
            if problem:
                result.rejected.append((i, problem))
                continue
            try:
                body = {k: v for k, v in d.items() if k not in ("message", "stack")}
                ts = to_millis(d["@timestamp"])
                params.append((ts * _SLOTS + zlib.crc32(d["event_id"].encode()) % _SLOTS, d["event_id"], ts,
                               d["level"], d["service"], d.get("incident_key"), d["message"], d.get("stack"),
                               orjson.dumps(body)))
            except (KeyError, ValueError, TypeError, orjson.JSONEncodeError) as exc:
                result.rejected.append((i, f"{type(exc).__name__}: {exc}"))
        if params:
            try:
                with self._tx() as conn:
                    if conn.executemany(_INSERT, params).rowcount < len(params):
                        self._resolve_collisions(conn, params)
            except sqlite3.OperationalError as exc:  # disk I/O, full disk, lock: the batch can be retried
                raise IndexUnavailable(f"SQLite index {self.path}: insert of {len(params)} rows failed: {exc}") \
                    from exc
        result.written = len(params)
        return result

    @staticmethod
    def _resolve_collisions(conn: sqlite3.Connection, params: list[tuple[Any, ...]]) -> None:
        """Some rows were not inserted: repeats (their id holds their event), or collisions (it holds another
        event), which go to the next free slot of their millisecond. Rare, so one row at a time."""
        for p in params:
            row_id, event_id, base = p[0], p[1], p[2] * _SLOTS
            for _ in range(_SLOTS):
                occupant = conn.execute("SELECT event_id FROM logs WHERE id = ?", (row_id,)).fetchone()
                if occupant is None:
                    conn.execute(_INSERT, (row_id, *p[1:]))
                    break
                if occupant[0] == event_id:
                    break
                row_id = base + (row_id - base + 1) % _SLOTS
            else:
                raise sqlite3.OperationalError(f"more than {_SLOTS} events in one millisecond ({event_id})")

    def add_alert(self, alert: Alert) -> dict[str, Any]:
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM incidents WHERE incident_key = ?", (alert.incident_key,)).fetchone()
            doc = merge_alert(orjson.loads(row[0]) if row else None, alert)
            self._put_incident(conn, doc)
        return doc

    def resolve_incident(self, incident_key: str, *, note: str, at: datetime, by: str = "console",
                         category: str | None = None, kb_id: str | None = None) -> dict[str, Any]:
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM incidents WHERE incident_key = ?", (incident_key,)).fetchone()
            if row is None:
                raise KeyError(f"no incident {incident_key!r} in {self.path}")
            doc = resolve(orjson.loads(row[0]), note=note, at=at, by=by, category=category, kb_id=kb_id)
            self._put_incident(conn, doc)
        return doc

    @staticmethod
    def _put_incident(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
        conn.execute("INSERT INTO incidents VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_key) DO UPDATE SET "
                     "last_seen = excluded.last_seen, status = excluded.status, doc = excluded.doc",
                     (doc["incident_key"], doc["last_seen"], doc["status"], doc["service"], orjson.dumps(doc)))

    def apply_retention(self, now: datetime) -> int:
        """Deletes logs older than the retention, then the oldest while the file is over max_bytes."""
        removed = 0
        cutoff = to_millis(now - self.retention)
        while True:
            with self._tx() as conn:
                n = conn.execute("DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE id < ? ORDER BY id "
                                 "LIMIT ?)", (cutoff * _SLOTS, _DELETE_CHUNK)).rowcount
            removed += n
            if n < _DELETE_CHUNK:
                break
        while self.used_bytes() > self.max_bytes:
            with self._tx() as conn:
                n = conn.execute("DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT ?)",
                                 (_DELETE_CHUNK,)).rowcount
            removed += n
            if n == 0:
                break
        if removed:
            with self._tx() as conn:
                conn.execute("DELETE FROM counts WHERE n <= 0")
        return removed

    def used_bytes(self) -> int:
        """Pages in use (freed pages are reused, so the file need not shrink)."""
        conn = self._conn()
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages) * int(conn.execute("PRAGMA page_size").fetchone()[0])

    # -- reads -------------------------------------------------------------------------------------------
    def search_logs(self, q: LogQuery) -> LogPage:
        """With words, FTS5 drives (its matches newest first, by rowid), unless the filters keep so few rows
        (the per-minute counts tell) that reading those and matching the words here is cheaper; without
        words, the primary key drives."""
        terms = words(q.text)
        if terms and self._few_rows(q):
            return self._search_filtered(q, set(terms))
        source = "logs_fts f JOIN logs l ON l.id = f.rowid" if terms else "logs l"
        key = "f.rowid" if terms else "l.id"
        where, params = self._log_filter(q, key)
        if terms:
            where.insert(0, "logs_fts MATCH ?")
            params.insert(0, " ".join(f'"{t}"' for t in terms))  # each word quoted: no FTS5 syntax from users
        conn = self._conn()
        if terms and (q.services or q.levels or q.incident_key):
            return self._search_fts_filtered(conn, q, where, params)
        total = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {' AND '.join(where) or '1'} "
                             f"LIMIT {TOTAL_CAP})", params).fetchone()[0]
        if q.cursor:
            where.append(f"{key} < ?")
            params.append(_cursor(q.cursor))
        rows = conn.execute(f"SELECT l.id, l.message, l.stack, l.doc FROM {source} WHERE {' AND '.join(where) or '1'}"
                            f" ORDER BY {key} DESC LIMIT ?", [*params, q.limit + 1]).fetchall()
        return _page(rows, total, q.limit)


    @staticmethod
    def _search_fts_filtered(conn: sqlite3.Connection, q: LogQuery, where: list[str], params: list[Any]) -> LogPage:
        """Words under a filter too wide to read whole: walk at most _COUNT_SCAN word matches, newest first,
        and keep those the filter admits. A walk cut short makes the total a lower bound, and the cursor
        resumes the walk where it stopped (a page may then hold fewer rows than asked)."""
        n_filter = len(q.services) + len(q.levels) + (1 if q.incident_key else 0)
        n_filter_where = sum(1 for v in (q.services, q.levels, q.incident_key) if v)
        # _log_filter puts the service, level and incident conditions (and their parameters) last.
        scan_where, filter_where = where[:-n_filter_where], where[-n_filter_where:]
        scan_params, filter_params = params[:-n_filter], params[-n_filter:]
        if q.cursor:
            scan_where = [*scan_where, "f.rowid < ?"]
            scan_params = [*scan_params, _cursor(q.cursor)]
        scan = f"SELECT f.rowid AS id FROM logs_fts f WHERE {' AND '.join(scan_where)} ORDER BY f.rowid DESC " \
               f"LIMIT {_COUNT_SCAN}"
        walked, last = conn.execute(f"SELECT COUNT(*), MIN(id) FROM ({scan})", scan_params).fetchone()
        cut = walked >= _COUNT_SCAN
        joined = f"FROM ({scan}) s JOIN logs l ON l.id = s.id WHERE {' AND '.join(filter_where)}"
        total = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 {joined} LIMIT {TOTAL_CAP})",
                             [*scan_params, *filter_params]).fetchone()[0]
        rows = conn.execute(f"SELECT l.id, l.message, l.stack, l.doc {joined} ORDER BY s.id DESC LIMIT ?",
                            [*scan_params, *filter_params, q.limit + 1]).fetchall()
        page = _page(rows, total, q.limit)
        if page.next_cursor is None and cut and last is not None:
            page.next_cursor = str(last)
        page.total_is_lower_bound = cut and total < TOTAL_CAP
        return page

    def _search_filtered(self, q: LogQuery, terms: set[str]) -> LogPage:
        """The filtered rows, newest first, kept when every word is in their message or stack head (the same
        words the tokenizer makes); whole documents are read for the page only."""
        conn = self._conn()
        if not q.services:  # every service, so that the (service, level, id) index serves the level filter
            q = replace(q, services=tuple(r[0] for r in conn.execute("SELECT DISTINCT service FROM counts")))
        where, params = self._log_filter(q, "l.id")
        rows = conn.execute(f"SELECT l.id, l.message, substr(l.stack, 1, {STACK_SEARCHED_CHARS}) FROM logs l "
                            f"INDEXED BY logs_service WHERE {' AND '.join(where)} ORDER BY l.id DESC",
                            params).fetchall()
        hits = []
        for row_id, message, stack in rows:
            text = f"{message}\n{stack or ''}".lower()
            if not all(t in text for t in terms):  # a word can only match where its letters occur: cheap test
                continue
            have = set(words(message))
            if terms <= have or (stack and terms <= have | set(words(stack))):
                hits.append(row_id)
        total = min(len(hits), TOTAL_CAP)
        if q.cursor:
            before = _cursor(q.cursor)
            hits = [h for h in hits if h < before]
        ids = hits[:q.limit + 1]
        docs = {r[0]: r for r in conn.execute(f"SELECT id, message, stack, doc FROM logs WHERE id IN "
                                              f"({','.join('?' * len(ids))})", ids)} if ids else {}
        return _page([docs[i] for i in ids], total, q.limit)

    def _few_rows(self, q: LogQuery) -> bool:
        if not (q.services or q.levels):
            return False
        where, params = ["1"], []
        if q.start is not None:
            where.append("minute >= ?")
            params.append(to_millis(q.start) // 60000)
        if q.end is not None:
            where.append("minute <= ?")
            params.append(to_millis(q.end) // 60000)
        for column, values in (("service", q.services), ("level", q.levels)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += list(values)
        n = self._conn().execute(f"SELECT SUM(n) FROM counts WHERE {' AND '.join(where)}", params).fetchone()[0]
        return (n or 0) < _FILTER_DRIVES_BELOW

    @staticmethod
    def _log_filter(q: LogQuery, key: str) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if q.start is not None:  # a time range is a range of the time-ordered ids
            where.append(f"{key} >= ?")
            params.append(to_millis(q.start) * _SLOTS)
        if q.end is not None:
            where.append(f"{key} < ?")
            params.append(to_millis(q.end) * _SLOTS)
        for column, values in (("l.service", q.services), ("l.level", q.levels)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += list(values)
        if q.incident_key:
            where.append("l.incident_key = ?")
            params.append(q.incident_key)
        return where, params

    def trend(self, q: TrendQuery) -> Trend:
        buckets = trend_buckets(q)
        step = q.interval_s // 60
        where = ["minute >= ?", "minute < ?"]
        params: list[Any] = [buckets[0] // 60000 if buckets else 0, to_millis(q.end) // 60000 + 1]
        for column, values in (("service", q.services), ("level", q.levels)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += list(values)
        rows = self._conn().execute(
            f"SELECT minute / {step} * {step} * 60000 AS b, {q.by}, SUM(n) FROM counts WHERE {' AND '.join(where)} "
            f"GROUP BY b, {q.by} HAVING SUM(n) > 0", params).fetchall()
        pos = {b: i for i, b in enumerate(buckets)}
        series: dict[str, list[int]] = {}
        for b, name, n in rows:
            if b in pos:
                series.setdefault(name, [0] * len(buckets))[pos[b]] += int(n)
        return Trend(buckets, dict(sorted(series.items())))

    def incidents(self, q: IncidentQuery) -> list[dict[str, Any]]:
        sql, params = "SELECT doc FROM incidents", []
        if q.status:
            sql, params = sql + " WHERE status = ?", [q.status]
        out = []
        for (body,) in self._conn().execute(sql + " ORDER BY last_seen DESC", params):
            doc = orjson.loads(body)
            if incident_matches(doc, q):
                out.append(doc)
                if len(out) >= q.limit:
                    break
        return out

    def incident(self, incident_key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT doc FROM incidents WHERE incident_key = ?", (incident_key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def healthcheck(self) -> Health:
        """Opens the file, creates the schema, counts rows."""
        try:
            n = self._conn().execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
            return Health("index", True, f"SQLite FTS5 index {self.path}: {n} incidents")
        except sqlite3.Error as exc:
            return Health("index", False, f"SQLite index {self.path}: {exc}; check the directory is writable "
                                          "(CALI_INDEX__SQLITE_PATH)")


def _cursor(cursor: str) -> int:
    if not cursor.isdigit():
        raise ValueError(f"bad cursor {cursor!r}")
    return int(cursor)


def _page(rows: list[Any], total: int, limit: int) -> LogPage:
    docs = []
    for _, message, stack, body in rows[:limit]:
        doc = orjson.loads(body)
        doc["message"] = message
        if stack is not None:
            doc["stack"] = stack
        docs.append(doc)
    more = len(rows) > limit
    return LogPage(docs, total, str(rows[limit - 1][0]) if more and docs else None)
