"""`cali fluentbit render`: the Fluent Bit config for the configured sources, and the checked-in examples."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cali.fluentbit.eks import render_eks_values
from cali.fluentbit.render import AWS, LOCAL, PROFILES, render_config
from cali.ship.settings import ShipConfig, ShipConfigError, load_config, load_ship_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cali.toml"
console = Console(stderr=True)
fluentbit_app = typer.Typer(help="Fluent Bit configuration rendered from CALI's sources and formats.",
                            no_args_is_help=True)


def _note(where: str) -> str:
    return f"# Sources and formats: {where}.\n"


def render_files(cfg: ShipConfig, where: str, profiles: tuple[str, ...] = ("aws", "local"),
                 eks: bool = True) -> dict[str, str]:
    """{file name: text} for the profiles asked for, plus the EKS chart values."""
    names = {"aws": "fluent-bit.yaml", "local": "fluent-bit.local.yaml"}
    files = {names[p]: render_config(cfg.to_sources(), cfg.catalog(), profile=PROFILES[p], origin_note=_note(where))
             for p in profiles}
    if eks:
        files["eks-values.yaml"] = render_eks_values(cfg.catalog())
    return files


def render_examples() -> dict[str, str]:
    """The checked-in fluent-bit/*.yaml: rendered from examples/cali.toml (the demo's services)."""
    return render_files(load_ship_config(EXAMPLE), "examples/cali.toml")


def render(
    out: Path = typer.Option(Path("fluent-bit"), "--out", help="Directory to write the YAML files to."),
    config: Path | None = typer.Option(None, "--config", help="A TOML file with [[sources]] and [[formats]] "
                                       "(default: cali.toml in the working directory, or CALI_SOURCES)."),
    profile: list[str] = typer.Option(["aws", "local"], "--profile",
                                      help=f"aws ({AWS.state_dir}, env stream names, Firehose) or local "
                                      f"(kinesalite over TLS, {LOCAL.state_dir}); repeatable."),
    eks: bool = typer.Option(True, "--eks/--no-eks", help="Also write eks-values.yaml (Helm chart values)."),
) -> None:
    """Write fluent-bit.yaml / fluent-bit.local.yaml / eks-values.yaml for the configured sources."""
    bad = sorted(set(profile) - PROFILES.keys())
    if bad:
        raise typer.BadParameter(f"unknown profile(s) {bad}; known: {sorted(PROFILES)}", param_hint="--profile")
    try:
        cfg, where = load_config(config)
        files = render_files(cfg, where, tuple(dict.fromkeys(profile)), eks)
    except (ShipConfigError, ValueError) as exc:
        console.print(f"[red]cannot render:[/red] {exc}")
        raise typer.Exit(2) from exc
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        console.print(f"wrote {out / name}")


fluentbit_app.command("render")(render)
