"""`cali console`: the console (and the analysis app that owns the knowledge base) on the local Ray."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def console_command(
    port: int | None = typer.Option(None, help="HTTP port (default: the Serve config's, 8000)."),
    analysis: bool = typer.Option(True, help="Also run the analysis app: resolutions go into its knowledge base."),
    demo_data: bool = typer.Option(False, "--demo-data", help="First fill the index with generated demo traffic."),
    minutes: float = typer.Option(30.0, help="--demo-data: minutes of traffic, ending now."),
    seed: int = typer.Option(7, help="--demo-data: generator seed."),
    kb: Path | None = typer.Option(None, help="Milvus Lite file of the knowledge base (default ./data/kb.db)."),
    embedder: str = typer.Option("minilm", help="Embedder of the analysis app: minilm or hashing."),
) -> None:
    """Run the CALI console on Ray Serve at /console (127.0.0.1), reading the configured index."""
    from ray import serve

    from cali.bootstrap import init_ray
    from cali.cli import _settings
    from cali.serve.command import deploy, load_config, serve_until_interrupted
    from cali.serve.console import deploy_console

    settings = _settings()
    init_ray(settings)
    args: dict = {"ray_namespace": settings.ray.namespace}
    if analysis:
        update: dict = {"embedder": {"kind": embedder}}
        if kb is not None:
            update["knowledge"] = {"uri": str(kb)}
        deploy(load_config(), port=port, args_update=update)
    else:
        args["knowledge"] = None
    url = deploy_console(load_config(name="cali-console"), port=port, args_update=args)
    if demo_data:
        from cali import bootstrap
        from cali.console.demo_data import load_demo

        index = bootstrap.index(settings)
        analyze = None
        if analysis:
            handle = serve.get_deployment_handle("Analyzer", app_name="cali-analysis")

            def analyze(record: dict) -> dict:
                return handle.analyze.remote(record, False).result(timeout_s=60)

        counts = load_demo(index, seed=seed, minutes=minutes, analyze=analyze)
        console.print(f"demo data: {counts}")
    console.print(f"CALI console on [bold]{url}/[/bold] (Ctrl-C stops it)")
    serve_until_interrupted()
