"""Service layer: orchestrates the pure core over the ports; no client library imports."""
