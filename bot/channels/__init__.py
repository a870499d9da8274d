"""Channels: where users reach the assistant (console, Telegram, Zalo)."""
