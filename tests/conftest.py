"""pytest is an entry point too: the tests' local Rays bind to loopback only if this is set before Ray is
imported, which test modules do at collection."""

from __future__ import annotations


def pytest_configure(config: object) -> None:
    from cali import rayenv

    rayenv.prepare(None)
