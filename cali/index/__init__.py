"""The log and incident index: a port and its adapters (SQLite FTS5 locally, OpenSearch in AWS)."""
