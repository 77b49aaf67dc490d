"""LLM adapters behind the ChatLLM port (cali.llm.verdict)."""
