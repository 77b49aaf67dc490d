"""`cali stack up|down|status`: the local AWS-compatible stack from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cali.stack import procs
from cali.stack.config import DEFAULT_WEBHOOK_URL, StackConfig, default_state_dir, repo_root
from cali.stack.lifecycle import AWS, KINESIS, down, status, up

stack_app = typer.Typer(help="Local Kinesis (kinesalite) + AWS (moto) stack on 127.0.0.1.",
                        no_args_is_help=True)
console = Console()

StateDir = typer.Option(None, "--state-dir", help="Pid files, logs, LevelDB (default <repo>/.local/stack).")
KinesisPort = typer.Option(4567, "--kinesis-port", help="kinesalite port.")
AwsPort = typer.Option(5055, "--aws-port", help="moto server port (S3, DynamoDB, Secrets Manager, Firehose).")
Tls = typer.Option(False, "--tls", help="Serve Kinesis over HTTPS with a local CA (for Fluent Bit).")


def _cfg(state_dir: Path | None, kinesis_port: int, aws_port: int, tls: bool, **extra: object) -> StackConfig:
    return StackConfig(state_dir=state_dir or default_state_dir(), kinesis_port=kinesis_port,
                       aws_port=aws_port, tls=tls, **extra)  # type: ignore[arg-type]


@stack_app.command("up")
def up_cmd(state_dir: Path | None = StateDir, kinesis_port: int = KinesisPort, aws_port: int = AwsPort,
           tls: bool = Tls,
           shards: int = typer.Option(2, "--shards", min=1, help="Shards of the stream when created."),
           stream: str = typer.Option("cali-logs", "--stream"),
           bucket: str = typer.Option("cali-archive", "--bucket"),
           webhook_url: str = typer.Option(DEFAULT_WEBHOOK_URL, "--webhook-url",
                                           help="Stored as the Slack webhook secret."),
           timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for each service."),
           ) -> None:
    """Start kinesalite and moto (if not running) and create stream, bucket, tables, secret, Firehose."""
    cfg = _cfg(state_dir, kinesis_port, aws_port, tls, shards=shards, stream=stream, bucket=bucket,
               webhook_url=webhook_url)
    from cali.startup import Port, preflight, reported, starting

    # A service already running from this state dir is reused, so only a foreign holder of a port fails.
    ports = [Port("kinesalite, Kinesis", kinesis_port, "--kinesis-port", process=KINESIS),
             Port("moto, S3/DynamoDB/Secrets Manager", aws_port, "--aws-port", process=AWS)]
    with reported("cali stack up"):
        preflight(p for p in ports if not procs.is_ours_alive(procs.read_pid(cfg.state_dir, p.process)))
        with starting(*ports, system="local stack", hint=f"logs in {cfg.state_dir}"):
            result = up(cfg, timeout_s=timeout)
    table = Table(title=f"CALI local stack ({cfg.state_dir})")
    for col in ("service", "pid", "started", "endpoint"):
        table.add_column(col)
    for name, s in result["services"].items():
        table.add_row(name, str(s["pid"]), "started" if s["started"] else "already running", s["endpoint"])
    console.print(table)
    res = Table(title="resources")
    res.add_column("kind")
    res.add_column("name")
    res.add_column("state")
    r = result["resources"]
    stream_state = f"{r['stream']['status']}, {r['stream']['open_shards']} open shards"
    res.add_row("stream", r["stream"]["name"], stream_state)
    res.add_row("bucket", r["bucket"]["name"], _created(r["bucket"]))
    for t in r["tables"]:
        res.add_row("table", t["name"], _created(t))
    res.add_row("secret", r["secret"]["name"], _created(r["secret"]))
    ds = r["delivery_stream"]
    res.add_row("firehose", ds["name"], f"{_created(ds)} ({ds.get('type')}) {ds.get('note', '')}".strip())
    console.print(res)
    if cfg.tls:
        console.print(f"Kinesis CA certificate: {cfg.ca_path}")
    _fluent_bit_hint(cfg)


def _fluent_bit_hint(cfg: StackConfig) -> None:
    """Readies fluent-bit/fluent-bit.local.yaml's state folder and says how to run it (docs/fluent-bit.md)."""
    root = repo_root()
    # The local config keeps its tail dbs and storage.path here, relative to the repo root; Fluent
    # Bit exits at start when the folder is missing.
    (root / ".local" / "fluent-bit").mkdir(parents=True, exist_ok=True)
    if not cfg.tls:
        console.print("Fluent Bit: its kinesis_streams output speaks HTTPS only, so it cannot use this plain-HTTP "
                      "endpoint; start the stack with `cali stack up --tls` to ship with Fluent Bit.")
        return
    default = cfg.kinesis_port == 4567 and cfg.ca_path.resolve() == (root / ".local/stack/tls/ca.pem").resolve()
    console.print("Fluent Bit (from the repo root; paths in the config are relative to it):\n"
                  f"  cd {root}\n"
                  "  cali generate --config examples/cali.toml --realtime --rate 50 &\n"
                  "  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\\n"
                  "    fluent-bit -c fluent-bit/fluent-bit.local.yaml")
    if not default:
        console.print(f"[yellow]note:[/yellow] fluent-bit.local.yaml expects Kinesis on 127.0.0.1:4567 with the CA "
                      f"at .local/stack/tls/ca.pem; this stack is on :{cfg.kinesis_port} with {cfg.ca_path}: "
                      "change endpoint, port and tls.ca_file in a copy.")


def _created(r: dict) -> str:
    return "created" if r.get("created") else "updated" if r.get("updated") else "exists"


@stack_app.command("down")
def down_cmd(state_dir: Path | None = StateDir) -> None:
    """Stop the processes this state dir started (by pid: SIGTERM, then SIGKILL)."""
    cfg = StackConfig(state_dir=state_dir or default_state_dir())
    table = Table(title="stopped")
    table.add_column("service")
    table.add_column("pid")
    table.add_column("result")
    for name, r in down(cfg).items():
        what = "killed" if r.get("killed") else "stopped" if r["stopped"] else "was not running"
        table.add_row(name, str(r["pid"] or "-"), what)
    console.print(table)


@stack_app.command("status")
def status_cmd(state_dir: Path | None = StateDir, kinesis_port: int = KinesisPort, aws_port: int = AwsPort,
               tls: bool = Tls) -> None:
    """Show each service's pid, liveness, endpoint and health; exit 1 if any is unhealthy."""
    cfg = _cfg(state_dir, kinesis_port, aws_port, tls)
    st = status(cfg)
    table = Table(title=f"CALI local stack ({cfg.state_dir})")
    for col in ("service", "pid", "alive", "endpoint", "health", "log"):
        table.add_column(col)
    for name, s in st.items():
        health = "[green]ok[/green]" if s["healthy"] else f"[red]{s['health']}[/red]"
        alive = "yes" if s["alive"] else "no"
        table.add_row(name, str(s["pid"] or "-"), alive, s["endpoint"], health, s["log"])
    console.print(table)
    if not all(s["healthy"] for s in st.values()):
        raise typer.Exit(1)
