"""CALI: application logs become actionable incidents."""
