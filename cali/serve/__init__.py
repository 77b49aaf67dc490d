"""Ray Serve: the analysis app (embedding, knowledge base, analyzer pool, HTTP ingress)."""
