"""The CALI console end to end in headless Debian Chromium (Playwright), on Ray Serve, with demo data loaded.

Set CALI_SCREENSHOTS=<dir> to keep a screenshot of each page there (`make screenshots` writes docs/console/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import free_port
from tests.support import needs

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network: no background connections, no component updates (machines/python.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NOTE = "zebra quokka cache stampede: the nightly job flushed the cache; staggered the expiry with jitter"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    needs.module("playwright.sync_api", "the playwright package is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        needs.missing(f"{CHROMIUM} is missing: apt-get install -y chromium (never a downloaded browser)")
    from cali.serve.console import VENDOR, assets_dir

    absent = [v for v in VENDOR.values() if not (assets_dir() / v).is_file()]
    if absent:
        needs.missing(f"console assets missing in {assets_dir()}: {absent} (make install runs npm ci)")
    import ray
    from ray import serve

    from cali.bootstrap import LOOPBACK_ENV
    from cali.console.demo_data import load_demo
    from cali.index.sqlite_fts import SqliteIndex
    from cali.serve.command import deploy, load_config
    from cali.serve.console import deploy_console

    tmp = tmp_path_factory.mktemp("console")
    os.environ.update(LOOPBACK_ENV)
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=f"console-{uuid.uuid4().hex[:6]}",
             logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": LOOPBACK_ENV})
    port = free_port()
    kb = tmp / "kb.db"
    deploy(load_config(), port=port, args_update={"embedder": {"kind": "hashing"}, "knowledge": {"uri": str(kb)}})
    url = deploy_console(load_config(name="cali-console"), port=port,
                         args_update={"index": {"sqlite_path": str(tmp / "index.db")}})
    index = SqliteIndex(tmp / "index.db")
    handle = serve.get_deployment_handle("Analyzer", app_name="cali-analysis")
    counts = load_demo(index, seed=11, minutes=20, rate=12,
                       analyze=lambda rec: handle.analyze.remote(rec, False).result(timeout_s=60))
    assert counts["incidents"] >= 3 and counts["analysed"] >= 3, counts
    yield {"url": url + "/", "index": index, "kb": kb, "counts": counts}
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = ctx.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    yield pg
    ctx.close()


def shot(pg, name: str) -> None:
    out = os.environ.get("CALI_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(out) / f"{name}.png"), full_page=False)


def test_every_page_loads_without_console_errors(served, page):
    from cali.core.index import IncidentQuery

    key = next(d["incident_key"] for d in served["index"].incidents(IncidentQuery()) if d.get("analysis"))
    page.goto(served["url"])
    page.wait_for_selector("[data-testid=incidents] tbody tr")
    assert page.locator("[data-testid=incidents] tbody tr").count() == served["counts"]["incidents"]
    shot(page, "incidents")
    page.goto(served["url"] + "#/incident/" + key.replace("|", "%7C"))
    page.wait_for_selector("[data-testid=analysis]")
    assert page.locator("[data-testid=incident-title]").inner_text().strip()
    assert page.locator("[data-testid=alerts] tbody tr").count() >= 1
    shot(page, "incident")
    page.locator("[data-testid=samples] details").first.locator("summary").click()  # expand a stack trace
    assert page.locator("[data-testid=samples] details[open] pre").first.inner_text().strip()
    page.goto(served["url"] + "#/trends")
    page.wait_for_function("document.getElementById('trend-level').dataset.points > 0")
    shot(page, "trends")
    page.goto(served["url"] + "#/logs")
    page.wait_for_selector("[data-testid=log-row]")
    shot(page, "logs")
    page.goto(served["url"] + "#/health")
    page.wait_for_selector("[data-page=health] article h3")
    shot(page, "health")
    page.wait_for_selector("[data-testid=live].on")
    assert page.errors == []  # type: ignore[attr-defined]


def test_charts_render_the_indexed_counts(served, page):
    from cali.core.index import TrendQuery

    page.goto(served["url"] + "#/trends")
    page.wait_for_function("document.getElementById('trend-service').dataset.points > 0")
    drawn = page.evaluate("""() => Object.fromEntries(['trend-level', 'trend-service'].map(id => [id,
        Chart.getChart(id).data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])]))""")
    by_level = dict(drawn["trend-level"])
    assert by_level["ERROR"] > 0 and by_level["INFO"] > by_level["ERROR"]
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    want = served["index"].trend(TrendQuery(start=end - timedelta(minutes=60), end=end, interval_s=60))
    assert by_level == {k: sum(v) for k, v in want.series.items()}
    assert set(dict(drawn["trend-service"])) and page.errors == []  # type: ignore[attr-defined]


def test_a_search_returns_the_expected_rows(served, page):
    from cali.core.index import LogQuery, words

    index = served["index"]
    sample = index.search_logs(LogQuery(levels=("ERROR",), limit=1)).rows[0]
    text = " ".join(words(sample["message"])[:3])
    expected = index.search_logs(LogQuery(text=text, levels=("ERROR",), services=(sample["service"],), limit=500))
    page.goto(served["url"] + "#/logs")
    page.fill("input[name=q]", text)
    page.fill("input[name=service]", sample["service"])
    page.select_option("select[name=level]", "ERROR")
    page.select_option("select[name=minutes]", "")
    page.click("form.filters button[type=submit]")
    page.wait_for_function(f"document.querySelector('[data-testid=log-total]').innerText == '{expected.total}'")
    shown = page.locator("[data-testid=log-row] summary").all_inner_texts()
    assert len(shown) == min(expected.total, 100) > 0
    assert all(w in s.lower() for s in shown for w in words(text)) or expected.rows[0]["stack"]
    assert sample["message"][:40] in "\n".join(shown)
    assert page.errors == []  # type: ignore[attr-defined]


def test_live_updates_show_a_new_incident_without_reload(served, page):
    from cali.core.alerts import Alert, AlertKind, Severity
    from cali.core.records import Level

    page.goto(served["url"])
    page.wait_for_selector("[data-testid=incidents] tbody tr")
    now = datetime.now(UTC)
    served["index"].add_alert(Alert(
        alert_id="live|ERROR|1#e#first", kind=AlertKind.FIRST, incident_key="live|ERROR|1", fingerprint="feedface",
        service="live", level=Level.ERROR, severity=Severity.HIGH, message="live update probe arrived",
        template="live update probe arrived", first_seen=now, last_seen=now, created_at=now))
    page.wait_for_selector("tr[data-key='live|ERROR|1']", timeout=20_000)
    assert page.errors == []  # type: ignore[attr-defined]


def test_resolving_an_incident_makes_kb_search_find_the_resolution(served, page):
    """Last in this module: it stops Serve so that `cali kb search` can open the Milvus Lite file."""
    from ray import serve

    from cali.core.index import IncidentQuery

    incident = next(d for d in served["index"].incidents(IncidentQuery(status="open")) if d["service"] != "live")
    key = incident["incident_key"]
    page.goto(served["url"] + "#/incident/" + key.replace("|", "%7C"))
    page.wait_for_selector("[data-testid=resolve-form]")
    page.fill("textarea[name=note]", NOTE)
    categories = page.locator("select[name=category] option").all_inner_texts()
    page.select_option("select[name=category]", categories[1])
    page.click("[data-testid=resolve-form] button[type=submit]")
    page.wait_for_selector("[data-testid=resolution]")
    assert page.locator("[data-testid=incident-status]").inner_text() == "resolved"
    shot(page, "resolved")
    doc = served["index"].incident(key)
    assert doc["status"] == "resolved" and doc["resolution"]["kb_id"].startswith("res-")
    assert page.errors == []  # type: ignore[attr-defined]
    serve.shutdown()  # the KnowledgeBase replica releases the Milvus Lite file
    query = f"{incident['title']}: {NOTE.split(': ', 1)[1]}"
    deadline = time.monotonic() + 30
    while True:
        # What an engineer looking for the fix types: the failure and what fixed it. (With the hashing
        # embedder and Milvus Lite's BM25 statistics for a one-entry segment, the title alone ranks the new
        # entry below curated ones: docs/console.md.)
        out = subprocess.run([sys.executable, "-m", "cali", "kb", "search", query,
                              "--db", str(served["kb"]), "--embedder", "hashing", "--json", "-k", "3"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.returncode == 0, out.stderr[-2000:]
    hits = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    found = [h for h in hits if h["id"] == doc["resolution"]["kb_id"]]
    assert found and found[0]["source"] == "resolved", [h["id"] for h in hits]
