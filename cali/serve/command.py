"""`cali serve`: the analysis app from cali/serve/config.yaml on the local (loopback) Ray or a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


def load_config(path: Path = DEFAULT_CONFIG, name: str = "cali-analysis") -> dict[str, Any]:
    """One application of the Serve config: name, route, args, per-deployment options, HTTP options."""
    doc = yaml.safe_load(path.read_text())
    apps = {a["name"]: a for a in doc["applications"]}
    if name not in apps:
        raise ValueError(f"{path} has no application {name!r}; it has {sorted(apps)}")
    app = apps[name]
    overrides = {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in app.get("deployments", [])}
    return {"name": app["name"], "route_prefix": app.get("route_prefix", "/"), "args": app.get("args") or {},
            "overrides": overrides, "http": doc.get("http_options") or {}}


def pipeline_args(settings: Any) -> dict[str, Any]:
    """Serve args that tie the app to the pipeline's Settings: the LLM budget lives in the same state store
    (SQLite dir made absolute, since replicas need not share the driver's working directory, or the
    DynamoDB table) with the same daily limit, and AWS region/endpoint. No secret goes in."""
    state = settings.state.model_dump(mode="json")
    state["sqlite_dir"] = str(Path(settings.state.sqlite_dir).resolve())
    return {"analyzer": {"budget": {"daily_llm_calls": settings.analysis.daily_llm_budget, "state": state}},
            "aws": {"region": settings.aws.region, "endpoint_url": settings.aws.endpoint_url}}


def deploy(config: dict[str, Any], *, port: int | None = None, args_update: dict[str, Any] | None = None) -> str:
    """serve.start on 127.0.0.1 (unless the config says otherwise) and serve.run; returns the base URL."""
    from ray import serve

    from cali.serve.app import build_app

    base = start_http(config, port)
    args = merge_args(config["args"], args_update or {})
    serve.run(build_app(args, config["overrides"]), name=config["name"], route_prefix=config["route_prefix"],
              blocking=False)
    return base


def start_http(config: dict[str, Any], port: int | None) -> str:
    """serve.start on the config's host (127.0.0.1 unless it says otherwise) and port; returns the base URL.
    Every app of the Serve instance shares this one HTTP server."""
    from ray import serve

    host = config["http"].get("host", "127.0.0.1")
    port = port if port is not None else config["http"].get("port", 8000)
    serve.start(http_options={"host": host, "port": port})
    return f"http://{host}:{port}"


def serve_until_interrupted() -> None:
    """Keeps the foreground command alive while Serve answers; Ctrl-C shuts Serve down."""
    import time

    from ray import serve

    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        serve.shutdown()


def merge_args(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = merge_args(out.get(k) or {}, v) if isinstance(v, dict) and isinstance(out.get(k), dict | None) else v
    return out
