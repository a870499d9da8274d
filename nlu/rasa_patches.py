"""Runtime changes to Rasa 3.6 that SPIN needs, applied by :mod:`nlu.serve`.

Each patch removes per-turn work that Rasa 3.6.21 does without need. None changes what
NLU predicts or which action runs. Costs are from profiles of one Rasa process on 2 cores
(``tests/benchmarks/bench_turns.py``, see docs/benchmarks.md).

- Rasa validates every action-server response with ``jsonschema.validate``, which checks
  the schema itself against its meta-schema on every call. That cost about 23 ms of a
  50 ms turn. The patch compiles the validator once and keeps validating every response
  with the same schema.
- ``Event.resolve_by_type`` walks the whole class tree of ``Event`` (about 30 classes,
  each tested with ``inspect.isabstract``) for every event it deserialises, and the
  tracker store deserialises the conversation window on every turn. The patch keeps a
  table from event type name to class.
- Rasa opens a new aiohttp session, and so a new TCP connection, for every call to the
  action server. The patch keeps one session per endpoint and event loop, so
  connections are reused (aiohttp closes idle ones after 15 s, before the action
  server's Sanic drops them after 120 s).
- Rasa sends the whole tracker window (40 events, 50-60 KB of JSON with Khmer text) to
  the action server on every call. SPIN's only custom action reads the sender id and
  the latest message and keeps its state in its own database, so the patch sends the
  events of the current turn only: those from the latest user message on.
  NOTE: a custom action that reads earlier events of the conversation needs this part
  of the patch removed.
- Each turn runs the model graph three times (NLU, then a policy prediction before and
  after the custom action) through ``dask.get``, which schedules the handful of nodes
  with general task-graph machinery, prunes the graph schema on every run, and formats
  the inputs into a debug message even when debug logging is off. The patch runs the
  nodes in dependency order in plain Python and prunes the schema once per set of
  targets. NLU parses and predictions stayed identical on 11 test messages. A message
  parse took 2.5 ms instead of 2.9 ms, and a policy prediction 0.22 ms instead of 0.38 ms.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ response validation


@functools.cache
def _response_validator() -> Any:
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    from jsonschema import ValidationError

    try:
        _response_validator().validate(result)
    except ValidationError as error:
        error.message += ". The action server's response does not match Rasa's action response format."
        raise
    return True


# ------------------------------------------------------------------ event classes by name

_EVENT_CLASSES: dict[str, type] = {}


def _refresh_event_classes() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    # The first class with a type name wins, as in Rasa's own linear search.
    for event_class in all_subclasses(Event):
        _EVENT_CLASSES.setdefault(event_class.type_name, event_class)


def _resolve_event_by_type(type_name: str, default: type | None = None) -> type | None:
    """Return the event class named ``type_name``, with the same fallbacks as Rasa's version."""
    event_class = _EVENT_CLASSES.get(type_name)
    if event_class is None:
        _refresh_event_classes()  # An Event subclass may have been imported since the last refresh.
        event_class = _EVENT_CLASSES.get(type_name)
    if event_class is not None:
        return event_class
    if type_name == "topic":
        return None  # Rasa ignores the TopicSet events of old trackers the same way.
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


# ------------------------------------------------------------------ action server calls

#: Sessions for endpoint requests, with the event loop each belongs to, by (id of the
#: EndpointConfig, id of the event loop).
_SESSIONS: dict[tuple[int, int], tuple[asyncio.AbstractEventLoop, Any]] = {}


def _endpoint_session(endpoint: Any) -> Any:
    """Return this endpoint's aiohttp session for the running event loop, creating it when needed."""
    loop = asyncio.get_running_loop()
    key = (id(endpoint), id(loop))
    cached = _SESSIONS.get(key)
    # Comparing the loop itself guards against a new loop that reuses a closed loop's id.
    if cached is not None and cached[0] is loop and not cached[1].closed:
        return cached[1]
    session = endpoint.session()
    _SESSIONS[key] = (loop, session)
    return session


async def _request(
    self: Any,
    method: str = "post",
    subpath: str | None = None,
    content_type: str | None = "application/json",
    compress: bool = False,
    **kwargs: Any,
) -> Any:
    """Send an HTTP request like Rasa 3.6's ``EndpointConfig.request``, on the endpoint's cached session."""
    import os
    import ssl

    import aiohttp
    from rasa.shared.exceptions import FileNotFoundException
    from rasa.utils.endpoints import ClientResponseError, concat_url

    headers: dict[str, Any] = {}
    if content_type:
        headers["Content-Type"] = content_type
    if "headers" in kwargs:
        headers.update(kwargs.pop("headers"))
    if self.headers:
        headers.update(self.headers)

    sslcontext = None
    if self.cafile:
        try:
            sslcontext = ssl.create_default_context(cafile=self.cafile)
        except FileNotFoundError as error:
            raise FileNotFoundException(
                f"Failed to find certificate file, '{os.path.abspath(self.cafile)}' does not exist."
            ) from error

    session = _endpoint_session(self)
    async with session.request(
        method,
        concat_url(self.url, subpath),
        headers=headers,
        params=self.combine_parameters(kwargs),
        compress=compress,
        ssl=sslcontext,
        **kwargs,
    ) as response:
        if response.status >= 400:
            raise ClientResponseError(response.status, response.reason, await response.content.read())
        try:
            return await response.json()
        except aiohttp.ContentTypeError:
            return None


def _current_turn_events(tracker: Any) -> list[Any]:
    """Return the tracker's events from its latest user message on (all events when it has none)."""
    from rasa.shared.core.events import UserUttered

    events = list(tracker.events)
    for position in range(len(events) - 1, -1, -1):
        if isinstance(events[position], UserUttered):
            return events[position:]
    return events


def _action_call_format(self: Any, tracker: Any, domain: Any) -> dict[str, Any]:
    """Build the action server request like Rasa 3.6, with the current turn's events only."""
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    tracker_state = tracker.current_state(EventVerbosity.NONE)
    tracker_state["events"] = [event.as_dict() for event in _current_turn_events(tracker)]
    result = {
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": tracker_state,
        "version": rasa.__version__,
    }
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
        result["domain"] = domain.as_dict()
    return result


# ------------------------------------------------------------------ graph runs


def _run_graph(self: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None) -> dict[str, Any]:
    """Run the graph like Rasa 3.6's ``DaskGraphRunner.run``, without dask.

    As in the dask graph that Rasa builds, a node is called with one ``(name, value)``
    pair per dependency, and an input counts as the pair ``(input name, value)``. A
    dependency that is neither a node nor an input is passed as the plain string.
    """
    from rasa.engine.exceptions import GraphRunError

    run_targets = targets if targets else self._graph_schema.target_names
    schemas = self.__dict__.setdefault("_spin_minimal_schemas", {})
    schema = schemas.get(tuple(run_targets))
    if schema is None:
        schema = schemas[tuple(run_targets)] = self._graph_schema.minimal_graph_schema(run_targets)
    nodes = schema.nodes

    results: dict[str, Any] = {}
    for input_name, input_value in (inputs or {}).items():
        if isinstance(input_value, str) and input_value in nodes:
            raise GraphRunError(
                f"Input value '{input_value}' clashes with a node name. Make sure that none of the "
                f"input names passed to the `run` method are the same as node names in the graph schema."
            )
        results[input_name] = (input_name, input_value)

    def compute(name: str) -> Any:
        if name in results:
            return results[name]
        if name not in nodes:
            return name
        arguments = [compute(dependency) for dependency in nodes[name].needs.values()]
        results[name] = self._instantiated_nodes[name](*arguments)
        return results[name]

    try:
        return dict(compute(target) for target in run_targets)
    except RuntimeError as error:
        raise GraphRunError("Error running runner.") from error


def install() -> None:
    """Apply the patches; safe to call more than once."""
    from rasa.core.actions.action import RemoteAction
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    RemoteAction._action_call_format = _action_call_format  # type: ignore[method-assign]
    Event.resolve_by_type = staticmethod(_resolve_event_by_type)  # type: ignore[assignment]
    EndpointConfig.request = _request  # type: ignore[method-assign]
    DaskGraphRunner.run = _run_graph  # type: ignore[method-assign]
    logger.debug("installed SPIN's Rasa patches")
