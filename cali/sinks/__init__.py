"""Sinks: where records leave the pipeline (archive, index)."""
