"""`python -m tests.support.no_preflight demo ...`: the cali CLI with the up-front port checks turned off,
so a test can take a port and see how each component's own bind failure is handled (the race)."""

import cali.demo
import cali.startup
from cali.cli import app


def _skip(ports: object) -> None:
    return None


cali.startup.preflight = _skip
cali.demo.preflight = _skip
app()
