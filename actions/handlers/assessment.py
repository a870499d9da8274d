"""Guided self-assessments (registered handlers)."""
