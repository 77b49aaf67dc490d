"""The daily batch: archive quality checks, the reindex job that learns the day's incidents, the report."""
