"""Record sources: where the pipeline reads log records from."""
