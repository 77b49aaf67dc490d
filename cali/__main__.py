"""`python -m cali` runs the CLI."""

from cali.cli import app

app()
