"""The CALI console: a second Serve application (route /console, the same HTTP port as /analyze).

Pages (one HTML page, hash routes): incidents and each incident, error trends, log search, pipeline
health, updated live (server-sent events). The chart and UI libraries are npm packages installed by the
Makefile into .local/console/node_modules and served from here: no CDN.

Access: with CALI_API_TOKEN set (the cluster's Secret), every API call needs
`Authorization: Bearer <token>` (or the `cali_console_token` cookie the page sets); without it, only
loopback clients are answered, which is what a local run bound to 127.0.0.1 has.
"""

# No `from __future__ import annotations`: FastAPI resolves the ingress annotations in the replica.
import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from ray import serve

from cali.console.service import check_access, split_values

log = logging.getLogger(__name__)
APP_NAME = "cali-console"
ROUTE_PREFIX = "/console"
TOKEN_ENV = "CALI_API_TOKEN"
STATIC = Path(__file__).resolve().parents[1] / "console" / "static"
REPO = Path(__file__).resolve().parents[2]
# The only vendor files served: name -> path under node_modules (cali/console/package.json pins them).
VENDOR = {"pico.min.css": "@picocss/pico/css/pico.min.css", "alpine.min.js": "alpinejs/dist/cdn.min.js",
          "chart.umd.min.js": "chart.js/dist/chart.umd.min.js"}
api = FastAPI(title="CALI console", description="Incidents, error trends, log search and pipeline health.",
              version="1", docs_url="/api/docs", openapi_url="/api/openapi.json")


class ResolveRequest(BaseModel):
    note: str = Field(min_length=3, max_length=4000)
    category: str = Field(min_length=1, max_length=80)
    root_cause: str = Field("", max_length=4000)
    remediation: list[str] = Field(default_factory=list, max_length=20)


def assets_dir() -> Path:
    return Path(os.environ.get("CALI_CONSOLE_ASSETS") or REPO / ".local" / "console" / "node_modules")


class _KnowledgeHandle:
    """The knowledge base through the analysis app's KnowledgeBase deployment (it owns the Milvus Lite file)."""

    def __init__(self, app_name: str, deployment: str) -> None:
        self.app_name, self.deployment = app_name, deployment

    def upsert(self, incidents: list[dict[str, Any]]) -> dict[str, Any]:
        handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        return handle.upsert.remote(incidents).result(timeout_s=60)


@serve.deployment(name="Console", num_replicas=1, ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=32)
@serve.ingress(api)
class ConsoleDeployment:
    def __init__(self, args: dict[str, Any] | None = None) -> None:
        from cali import bootstrap
        from cali.actors.launch import pipeline_status
        from cali.analysis.commands import taxonomy_path
        from cali.analysis.kb import load_taxonomy
        from cali.config import load_settings
        from cali.console.service import ConsoleService
        from cali.metrics import Recorder

        args = args or {}
        settings = load_settings()
        if args.get("index"):
            settings = settings.model_copy(update={"index": settings.index.model_copy(update=args["index"])})
        if args.get("ray_namespace"):
            settings = settings.model_copy(update={"ray": settings.ray.model_copy(
                update={"namespace": args["ray_namespace"]})})
        index = bootstrap.index(settings)
        if index is None:
            raise RuntimeError("the console needs an index: CALI_INDEX__BACKEND is off")
        kb = args.get("knowledge", {"app_name": "cali-analysis", "deployment": "KnowledgeBase"})
        knowledge = _KnowledgeHandle(kb["app_name"], kb["deployment"]) if kb else None
        tax = taxonomy_path()
        categories = list(load_taxonomy(tax)) if tax else []
        self.settings = settings
        self.service = ConsoleService(index, knowledge, lambda: pipeline_status(settings, timeout=5),
                                      categories=categories)
        self.token = os.environ.get(TOKEN_ENV) or None
        self.metrics = Recorder()

    # -- access ------------------------------------------------------------------------------------------
    def _authorize(self, request: Request) -> None:
        denied = check_access(self.token, request.client.host if request.client else "",
                              request.headers.get("authorization", ""), request.cookies.get("cali_console_token", ""))
        if denied is not None:
            raise HTTPException(denied[0], denied[1], headers={"WWW-Authenticate": "Bearer"} if denied[0] == 401
                                else None)

    def _timed(self, route: str, started: float) -> None:
        self.metrics.observe("cali_console_request_seconds", time.monotonic() - started, route=route)

    # -- pages and assets --------------------------------------------------------------------------------
    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(self, request: Request) -> HTMLResponse:
        # Relative asset and API URLs resolve under the route prefix, with or without a trailing slash.
        base = (request.scope.get("root_path") or "").rstrip("/") + "/"
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("<head>", f'<head>\n  <base href="{base}">', 1))

    @api.get("/static/{name}", include_in_schema=False)
    def static(self, name: str) -> FileResponse:
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()} or name == "index.html":
            raise HTTPException(404, f"no static file {name}")
        return FileResponse(path)

    @api.get("/vendor/{name}", include_in_schema=False)
    def vendor(self, name: str) -> FileResponse:
        if name not in VENDOR:
            raise HTTPException(404, f"no vendor file {name}")
        path = assets_dir() / VENDOR[name]
        if not path.is_file():
            raise HTTPException(500, f"{path} is missing: run `make install` (npm ci into .local/console) or set "
                                     "CALI_CONSOLE_ASSETS to the node_modules folder")
        return FileResponse(path)

    # -- API ---------------------------------------------------------------------------------------------
    @api.get("/api/meta")
    def meta(self, request: Request) -> dict[str, Any]:
        self._authorize(request)
        from cali.console.service import LEVELS

        return {"levels": LEVELS, "categories": self.service.categories, "index": self.settings.index.backend}

    @api.get("/api/incidents")
    def incidents(self, request: Request, status: str = "", service: str = "", q: str = "") -> list[dict[str, Any]]:
        self._authorize(request)
        started = time.monotonic()
        try:
            return self.service.incidents(status or None, service or None, q)
        finally:
            self._timed("incidents", started)

    @api.get("/api/incident")
    def incident(self, request: Request, key: str) -> dict[str, Any]:
        self._authorize(request)
        started = time.monotonic()
        try:
            doc = self.service.incident(key)
        finally:
            self._timed("incident", started)
        if doc is None:
            raise HTTPException(404, f"no incident {key!r}")
        return doc

    @api.post("/api/incident/resolve")
    def resolve(self, request: Request, key: str, body: ResolveRequest) -> dict[str, Any]:
        self._authorize(request)
        from cali.console.service import Resolution

        try:
            return self.service.resolve(key, Resolution(note=body.note, category=body.category,
                                                        root_cause=body.root_cause,
                                                        remediation=tuple(body.remediation)))
        except KeyError as exc:
            raise HTTPException(404, f"no incident {key!r}") from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        except Exception as exc:  # the knowledge base (the analysis app) is not running or failed
            raise HTTPException(503, f"the resolution could not be written to the knowledge base "
                                     f"({type(exc).__name__}: {str(exc)[:300]}); is the analysis app running "
                                     "(`cali serve`)?") from exc

    @api.get("/api/logs")
    def logs(self, request: Request, q: str = "", service: str = "", level: str = "", minutes: int | None = None,
             cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        self._authorize(request)
        started = time.monotonic()
        try:
            return self.service.logs(text=q, services=split_values(service), levels=split_values(level),
                                     minutes=minutes, cursor=cursor or None, limit=limit)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        finally:
            self._timed("logs", started)

    @api.get("/api/trend")
    def trend(self, request: Request, by: str = "level", minutes: int = 60, service: str = "",
              level: str = "") -> dict[str, Any]:
        self._authorize(request)
        started = time.monotonic()
        try:
            return self.service.trend(by=by, minutes=max(5, min(minutes, 7 * 24 * 60)), services=split_values(service),
                                      levels=split_values(level))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        finally:
            self._timed("trend", started)

    @api.get("/api/health")
    def health(self, request: Request) -> dict[str, Any]:
        self._authorize(request)
        try:
            return self.service.health()
        except Exception as exc:  # Ray or an actor did not answer: say so on the page
            return {"shards": [], "trackers": [], "alerter": None, "totals": {},
                    "problems": [f"pipeline status unavailable: {type(exc).__name__}: {exc}"]}

    @api.get("/api/events")
    async def events(self, request: Request) -> StreamingResponse:
        """Server-sent events: `change` whenever the newest incident update or log line changes."""
        self._authorize(request)

        async def stream() -> Any:
            last = None
            yield "retry: 3000\n\n"
            while True:
                now = await asyncio.to_thread(self.service.version)
                if now != last:
                    last = now
                    yield f"event: change\ndata: {json.dumps(now)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(2)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def app(args: dict[str, Any] | None = None) -> Any:
    """The application builder named in the Serve config (`import_path: cali.serve.console:app`)."""
    return ConsoleDeployment.bind(args or {})


def deploy_console(config: dict[str, Any], *, port: int | None = None,
                   args_update: dict[str, Any] | None = None) -> str:
    """serve.start on the config's host (127.0.0.1 locally) and serve.run of the console; returns its URL."""
    from cali.serve.command import merge_args, start_http

    base = start_http(config, port)
    args = merge_args(config["args"], args_update or {})
    dep = ConsoleDeployment.options(**config["overrides"]["Console"]) if "Console" in config["overrides"] \
        else ConsoleDeployment
    serve.run(dep.bind(args), name=config["name"], route_prefix=config["route_prefix"], blocking=False)
    return f"{base}{config['route_prefix']}"
