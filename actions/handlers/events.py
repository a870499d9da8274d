"""Events catalogue, subscriptions and reminders in chat (registered handlers)."""
