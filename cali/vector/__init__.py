"""Vector stores of the incident knowledge base (one module per system)."""
