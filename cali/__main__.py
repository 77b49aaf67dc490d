"""`python -m cali` (and the `cali` script) runs the CLI; `cali fingerprint` starts without the rest."""

import sys


def main() -> None:
    # `cali fingerprint` is a filter in pipelines, run per batch: it skips typer and the other
    # commands' imports (boto3, pydantic, the analysis stack), most of its run time on 2k lines.
    if sys.argv[1:2] == ["fingerprint"]:
        from cali.grouping.cli import main as fingerprint

        sys.exit(fingerprint(sys.argv[2:]))
    from cali.cli import app

    app()


if __name__ == "__main__":
    main()
