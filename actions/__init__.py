"""Rasa action server: one custom action routes every turn to a handler."""

from actions.spin_action import ActionSpin

__all__ = ["ActionSpin"]
