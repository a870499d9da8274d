"""Event reminders: planning, quiet hours, the delivery worker and scheduler ownership.

Modules here import no APScheduler at package import, so the action server can use
the planning helpers without loading the scheduler.
"""
