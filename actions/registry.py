"""Handler registration: feature modules declare what they handle.

- ``@on_command("assess")`` handles button commands ``assess`` or ``assess:...``.
- ``@on_intent("list_events")`` handles an intent when no open flow takes the turn.
- ``@interceptor(priority)`` sees every non-command turn first (open flows such as an
  assessment in progress) and returns None to let the turn pass.
- ``@on_cancel`` hooks run on the cancel intent; each returns a reply when it closed
  something.
"""

from __future__ import annotations

from collections.abc import Callable

from actions.context import TurnContext
from actions.reply import Reply

Handler = Callable[[TurnContext], list[Reply]]
Interceptor = Callable[[TurnContext], list[Reply] | None]

COMMANDS: dict[str, Handler] = {}
INTENTS: dict[str, Handler] = {}
INTERCEPTORS: list[tuple[int, Interceptor]] = []
CANCEL_HOOKS: list[Interceptor] = []


def on_command(prefix: str) -> Callable[[Handler], Handler]:
    """Register a handler for button commands whose first field is ``prefix``."""

    def register(handler: Handler) -> Handler:
        if prefix in COMMANDS:
            raise ValueError(f"command prefix {prefix!r} is registered twice")
        COMMANDS[prefix] = handler
        return handler

    return register


def on_intent(*intents: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more intents."""

    def register(handler: Handler) -> Handler:
        for intent in intents:
            if intent in INTENTS:
                raise ValueError(f"intent {intent!r} is registered twice")
            INTENTS[intent] = handler
        return handler

    return register


def interceptor(priority: int) -> Callable[[Interceptor], Interceptor]:
    """Register an interceptor; lower ``priority`` runs first."""

    def register(function: Interceptor) -> Interceptor:
        INTERCEPTORS.append((priority, function))
        INTERCEPTORS.sort(key=lambda item: item[0])
        return function

    return register


def on_cancel(function: Interceptor) -> Interceptor:
    """Register a hook that closes an open flow on the cancel intent."""
    CANCEL_HOOKS.append(function)
    return function
