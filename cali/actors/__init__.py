"""Thin Ray actors: each holds adapters built by cali.bootstrap and calls the core."""
