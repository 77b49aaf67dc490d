"""The OpenSearch index (opensearch-py): daily logs indices with an ISM retention, incidents in one index."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from cali.core.alerts import Alert
from cali.core.fingerprint import incident_fingerprint
from cali.core.index import (
    IncidentQuery,
    LogPage,
    LogQuery,
    Trend,
    TrendQuery,
    cursor_of,
    daily_index,
    merge_alert,
    resolve,
    trend_buckets,
)
from cali.core.ports import Health
from cali.index import opensearch_mapping as m
from cali.index.port import DocumentRejected, IndexUnavailable, WriteResult

log = logging.getLogger(__name__)
RETRYABLE = {429, 502, 503, 504}  # per-document statuses worth another try (es_rejected_execution, overload)


class OpenSearchIndex:
    def __init__(self, client: Any, *, retention_days: int = 14, shards: int = 1, refresh: bool | str = False,
                 item_retries: int = 3, sleep: Callable[[float], Any] = time.sleep) -> None:
        self.client = client
        self.retention_days = retention_days
        self.shards = shards
        self.refresh = refresh  # "wait_for" in tests; production relies on the 5 s refresh interval
        self.item_retries = item_retries
        self._sleep = sleep
        self._ready = False

    def __repr__(self) -> str:
        return "OpenSearchIndex()"

    # -- setup -------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """PUT the ingest pipeline, both index templates and the ISM policy (created, or updated if changed)."""
        try:
            self.client.ingest.put_pipeline(id=m.PIPELINE, body=m.firehose_pipeline())
            self.client.indices.put_index_template(name=m.LOGS_PREFIX, body=m.logs_template(self.shards))
            self.client.indices.put_index_template(name=m.INCIDENTS_INDEX, body=m.incidents_template())
            self._put_policy(m.ism_policy(self.retention_days))
        except Exception as exc:
            raise IndexUnavailable(f"OpenSearch setup (pipeline {m.PIPELINE}, templates {m.LOGS_PREFIX} and "
                                   f"{m.INCIDENTS_INDEX}, ISM policy {m.ISM_POLICY}) failed: {_describe(exc)}; "
                                   "check the endpoint and that this role may manage templates and ISM") from exc
        self._ready = True

    def _put_policy(self, body: dict[str, Any]) -> None:
        from opensearchpy.exceptions import NotFoundError

        ism = self.client.plugins.index_management
        try:
            current = ism.get_policy(policy=m.ISM_POLICY)
        except NotFoundError:
            ism.put_policy(policy=m.ISM_POLICY, body=body)
            return
        mine = body["policy"]
        theirs = current.get("policy", {})
        if all(theirs.get(k) == v for k, v in mine.items()):
            return
        # An existing policy changes only with the sequence number and primary term it had (ISM API).
        ism.put_policy(policy=m.ISM_POLICY, body=body,
                       params={"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]})

    def _setup_once(self) -> None:
        if not self._ready:
            self.setup()

    # -- writes ------------------------------------------------------------------------------------------
    def write_logs(self, docs: Sequence[dict[str, Any]]) -> WriteResult:
        """POST /_bulk of `index` actions (id = event_id, daily index by @timestamp); items OpenSearch answers
        429/5xx for are sent again with backoff, other failures are rejections with OpenSearch's reason."""
        self._setup_once()
        result = WriteResult()
        todo = list(range(len(docs)))
        delay = 0.5
        for attempt in range(self.item_retries + 1):
            lines: list[bytes] = []
            sent = []
            for i in todo:
                d = docs[i]
                try:  # the daily index comes from @timestamp: without a time there is no index to send it to
                    action = {"index": {"_index": daily_index(m.LOGS_PREFIX, d["@timestamp"]), "_id": d["event_id"]}}
                except (KeyError, ValueError, TypeError, AttributeError):
                    result.rejected.append((i, f"failed to parse field [@timestamp] of type [date]: "
                                               f"{d.get('@timestamp')!r}"))
                    continue
                lines += [orjson.dumps(action), orjson.dumps(d)]
                sent.append(i)
            todo = sent
            if not todo:
                break
            body = b"\n".join(lines) + b"\n"
            try:
                resp = self.client.bulk(body=body, params={"refresh": _refresh(self.refresh)} if self.refresh else None)
            except Exception as exc:
                raise IndexUnavailable(f"OpenSearch POST /_bulk of {len(todo)} documents failed: {_describe(exc)}") \
                    from exc
            again = []
            for i, item in zip(todo, resp["items"], strict=True):
                op = next(iter(item.values()))
                status = int(op.get("status", 500))
                if status < 300:
                    result.written += 1
                elif status in RETRYABLE and attempt < self.item_retries:
                    again.append(i)
                else:
                    err = op.get("error") or {}
                    result.rejected.append((i, f"HTTP {status} {err.get('type', '')}: {err.get('reason', err)}"))
            todo = again
            if not todo:
                break
            self._sleep(delay)
            delay = min(delay * 2, 10.0)
        return result

    def add_alert(self, alert: Alert) -> dict[str, Any]:
        return self._update_incident(alert.incident_key, lambda doc: merge_alert(doc, alert))

    def resolve_incident(self, incident_key: str, *, note: str, at: datetime, by: str = "console",
                         category: str | None = None, kb_id: str | None = None) -> dict[str, Any]:
        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None:
                raise KeyError(f"no incident {incident_key!r} in {m.INCIDENTS_INDEX}")
            return resolve(doc, note=note, at=at, by=by, category=category, kb_id=kb_id)

        return self._update_incident(incident_key, change)

    def _update_incident(self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """GET, change, then PUT with if_seq_no/if_primary_term (or _create): a concurrent writer makes it 409,
        and the change is applied again to what that writer stored."""
        from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError

        self._setup_once()
        doc_id = incident_fingerprint(key)
        for _ in range(10):
            try:
                got = self.client.get(index=m.INCIDENTS_INDEX, id=doc_id)
            except NotFoundError:
                got = None
            except Exception as exc:
                raise IndexUnavailable(f"OpenSearch GET {m.INCIDENTS_INDEX}/_doc/{doc_id}: {_describe(exc)}") from exc
            new = change(got["_source"] if got else None)
            params: dict[str, Any] = {"refresh": _refresh(self.refresh)} if self.refresh else {}
            try:
                if got is None:
                    self.client.create(index=m.INCIDENTS_INDEX, id=doc_id, body=new, params=params)
                else:
                    params |= {"if_seq_no": got["_seq_no"], "if_primary_term": got["_primary_term"]}
                    self.client.index(index=m.INCIDENTS_INDEX, id=doc_id, body=new, params=params)
                return new
            except ConflictError:
                continue
            except RequestError as exc:  # 400: the mapping refuses this document
                raise DocumentRejected(f"OpenSearch PUT {m.INCIDENTS_INDEX}/_doc/{doc_id}: {_describe(exc)}") from exc
            except Exception as exc:
                raise IndexUnavailable(f"OpenSearch PUT {m.INCIDENTS_INDEX}/_doc/{doc_id}: {_describe(exc)}") from exc
        raise IndexUnavailable(f"incident {key!r}: 10 conflicting concurrent updates in a row")

    def apply_retention(self, now: datetime) -> int:
        """Nothing to do here: the ISM policy deletes old daily indices inside OpenSearch."""
        return 0

    # -- reads -------------------------------------------------------------------------------------------
    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.search(index=index, body=body, params={"ignore_unavailable": "true",
                                                                      "allow_no_indices": "true"})
        except Exception as exc:
            raise IndexUnavailable(f"OpenSearch POST /{index}/_search {orjson.dumps(body).decode()[:500]}: "
                                   f"{_describe(exc)}") from exc

    def search_logs(self, q: LogQuery) -> LogPage:
        resp = self._search(m.LOGS_PATTERN, m.log_search(q))
        hits = [h["_source"] for h in resp["hits"]["hits"]]
        total = resp["hits"]["total"]
        rows = hits[:q.limit]
        more = len(hits) > q.limit
        return LogPage(rows, int(total["value"] if isinstance(total, dict) else total),
                       cursor_of(rows[-1]) if more and rows else None,
                       total_is_lower_bound=isinstance(total, dict) and total.get("relation") == "gte")

    def trend(self, q: TrendQuery) -> Trend:
        resp = self._search(m.LOGS_PATTERN, m.trend_search(q))
        buckets = trend_buckets(q)
        pos = {b: i for i, b in enumerate(buckets)}
        series: dict[str, list[int]] = {}
        for b in resp.get("aggregations", {}).get("t", {}).get("buckets", []):
            at = int(b["key"])
            if at not in pos:
                continue
            for s in b["s"]["buckets"]:
                series.setdefault(str(s["key"]), [0] * len(buckets))[pos[at]] += int(s["doc_count"])
        return Trend(buckets, dict(sorted(series.items())))

    def incidents(self, q: IncidentQuery) -> list[dict[str, Any]]:
        resp = self._search(m.INCIDENTS_INDEX, m.incident_search(q))
        return [h["_source"] for h in resp["hits"]["hits"]]

    def incident(self, incident_key: str) -> dict[str, Any] | None:
        from opensearchpy.exceptions import NotFoundError

        try:
            return self.client.get(index=m.INCIDENTS_INDEX, id=incident_fingerprint(incident_key))["_source"]
        except NotFoundError:
            return None
        except Exception as exc:
            raise IndexUnavailable(f"OpenSearch GET {m.INCIDENTS_INDEX}: {_describe(exc)}") from exc

    def healthcheck(self) -> Health:
        """GET /_cluster/health."""
        try:
            h = self.client.cluster.health()
        except Exception as exc:
            return Health("index", False, f"OpenSearch GET /_cluster/health: {_describe(exc)}; check "
                                          "CALI_INDEX__OPENSEARCH_URL and that this role is mapped in the "
                                          "domain's fine-grained access control (docs/deploy.md)")
        return Health("index", h.get("status") in ("green", "yellow"),
                      f"OpenSearch cluster {h.get('cluster_name')}: {h.get('status')}")

    def close(self) -> None:
        try:
            self.client.close()
        except Exception as exc:  # closing a pool never matters more than the caller's own shutdown
            log.debug("closing the OpenSearch client: %s", exc)


def _refresh(value: bool | str) -> str:
    return value if isinstance(value, str) else "true"


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    info = getattr(exc, "info", None)
    body = orjson.dumps(info, default=str).decode()[:500] if isinstance(info, dict) else str(info or "")[:500]
    return f"{type(exc).__name__} (HTTP {status}): {body or exc}" if status else f"{type(exc).__name__}: {exc}"


def client_from_settings(url: str, *, auth: str, region: str, username: str | None = None,
                         password: str | None = None, timeout_s: float = 10.0) -> Any:
    """An opensearch-py client: SigV4 (the pod's IAM role) on Amazon OpenSearch, basic auth, or none."""
    from opensearchpy import OpenSearch, RequestsHttpConnection

    kwargs: dict[str, Any] = {"hosts": [url], "timeout": timeout_s, "max_retries": 2, "retry_on_timeout": True,
                              "http_compress": True, "connection_class": RequestsHttpConnection}
    if auth == "sigv4":
        import boto3
        from opensearchpy import AWSV4SignerAuth

        kwargs["http_auth"] = AWSV4SignerAuth(boto3.Session().get_credentials(), region, "es")
    elif auth == "basic":
        kwargs["http_auth"] = (username or "", password or "")
    return OpenSearch(**kwargs)
