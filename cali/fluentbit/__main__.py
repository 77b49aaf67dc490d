"""`python -m cali.fluentbit`: re-render the checked-in fluent-bit/*.yaml from examples/cali.toml."""

from __future__ import annotations

import sys
from pathlib import Path

from cali.fluentbit.command import render_examples


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "fluent-bit"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_examples().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
