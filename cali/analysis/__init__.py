"""AI analysis: retrieval of similar past incidents and a grounded probable cause (pure core)."""
