"""Starting and stopping the Rasa server and the action server as child processes.

Both bind 127.0.0.1 only. Rasa's HTTP API is protected by an auth token; the action
server has no authentication, so it must never listen beyond loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bot.settings import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger(__name__)

RASA_VENV = PROJECT_ROOT / ".venv-rasa"
RASA_MODEL = "spin.tar.gz"
#: Rasa takes 17-19 s to load on 2 cores; the action server loads the embedding model.
STARTUP_TIMEOUT_SECONDS = 180.0
LOOPBACK = "127.0.0.1"
#: Events Rasa keeps per conversation (see nlu/tracker_store.py).
TRACKER_MAX_EVENTS = 40
#: File in the var folder with the Rasa auth token of the services on the configured ports.
AUTH_TOKEN_FILE = "rasa-auth-token"


class ServiceError(RuntimeError):
    """A service failed to start; the message names its log file."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Return True when nothing listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((LOOPBACK, port)) != 0


def rasa_model_path(settings: Settings) -> Path:
    """Return the trained Rasa model file."""
    return settings.var_dir / "rasa-models" / RASA_MODEL


@dataclasses.dataclass
class RunningServices:
    """Ports and processes of a started (or found) Rasa + action server pair."""

    rasa_port: int
    action_port: int
    auth_token: str
    processes: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    @property
    def rasa_url(self) -> str:
        return f"http://{LOOPBACK}:{self.rasa_port}"

    def settings(self, base: Settings) -> Settings:
        """Return ``base`` pointing at these services."""
        return base.model_copy(
            update={"rasa_port": self.rasa_port, "action_port": self.action_port, "rasa_auth_token": self.auth_token}
        )

    def stop(self) -> None:
        """Stop the processes this object started (SIGTERM, then SIGKILL after 10 s)."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _write_endpoints(settings: Settings, action_port: int) -> Path:
    path = settings.var_dir / "run" / f"endpoints-{action_port}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'action_endpoint:\n  url: "http://{LOOPBACK}:{action_port}/webhook"\n'
        f"tracker_store:\n  type: nlu.tracker_store.WindowedTrackerStore\n  max_events: {TRACKER_MAX_EVENTS}\n",
        encoding="utf-8",
    )
    return path


def _child_env(settings: Settings, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SANIC_HOST": LOOPBACK,
            "VAR_DIR": str(settings.var_dir),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
    )
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    env.update(extra)
    return env


def _spawn(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    logger.info("starting %s (log %s)", Path(command[0]).name, log_path)
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            name = Path(str(process.args[0])).name  # type: ignore[index]
            raise ServiceError(f"{name} exited with code {process.returncode} during startup: see {log_path}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServiceError(f"{url} did not become ready within {STARTUP_TIMEOUT_SECONDS:.0f} s: see {log_path}")


def shared_auth_token(settings: Settings) -> str:
    """Return ``RASA_AUTH_TOKEN``, else a token generated once and kept in the var folder.

    Services on the configured ports use it, so a second command (``spin chat`` beside
    ``make run``) can authenticate to the running Rasa server instead of starting another.
    The file is readable by its owner only.
    """
    if settings.rasa_auth_token:
        return settings.rasa_auth_token
    path = settings.var_dir / AUTH_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="ascii").strip()
        if token:
            return token
        raise ServiceError(f"{path} is empty: delete it and start again") from None
    token = secrets.token_urlsafe(24)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(token)
    return token


def rasa_is_running(settings: Settings) -> bool:
    """Return True when a Rasa server with a loaded model answers at the configured port."""
    try:
        response = httpx.get(f"{settings.rasa_url}/status", params={"token": settings.rasa_auth_token}, timeout=2.0)
        return response.status_code == 200 and bool(response.json().get("model_file"))
    except (httpx.HTTPError, ValueError):
        return False


def start_services(
    settings: Settings | None = None, *, rasa_port: int | None = None, action_port: int | None = None
) -> RunningServices:
    """Start the action server and the Rasa server, and wait until both answer.

    Ports default to free ones, so tests and benchmarks never collide with a running
    assistant; :func:`running_services` asks for the configured ports.
    Raises :class:`ServiceError` naming the log file when either fails to start.
    """
    settings = settings or get_settings()
    model = rasa_model_path(settings)
    if not model.exists():
        raise ServiceError(f"Rasa model {model} is missing: run `make setup` (or `make train`) to train it")
    rasa_python = RASA_VENV / "bin" / "python"
    if not rasa_python.exists():
        raise ServiceError(f"{rasa_python} is missing: run `make setup` to create the Rasa environment")

    action_port = action_port or free_port()
    rasa_port = rasa_port or free_port()
    token = settings.rasa_auth_token or secrets.token_urlsafe(24)
    services = RunningServices(rasa_port=rasa_port, action_port=action_port, auth_token=token)
    logs = settings.var_dir / "logs"
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT_SECONDS

    try:
        actions_log = logs / f"actions-{action_port}.log"
        action_process = _spawn(
            [sys.executable, "-m", "actions.server", "--port", str(action_port)],
            actions_log,
            _child_env(settings, {}),
        )
        services.processes.append(action_process)

        rasa_log = logs / f"rasa-{rasa_port}.log"
        rasa_process = _spawn(
            [
                str(rasa_python),
                "-m",
                "nlu.serve",
                "run",
                "--interface",
                LOOPBACK,
                "--port",
                str(rasa_port),
                "--enable-api",
                # One argument with "=": a random URL-safe token can start with "-",
                # which argparse would take for an option (about 1 start in 64).
                f"--auth-token={token}",
                "--model",
                str(model),
                "--endpoints",
                str(_write_endpoints(settings, action_port)),
                "--credentials",
                str(PROJECT_ROOT / "credentials.yml"),
            ],
            rasa_log,
            _child_env(settings, {}),
        )
        services.processes.append(rasa_process)

        _wait_ready(f"http://{LOOPBACK}:{action_port}/health", action_process, actions_log, deadline)
        _wait_ready(f"http://{LOOPBACK}:{rasa_port}/status?token={token}", rasa_process, rasa_log, deadline)
    except BaseException:
        services.stop()
        raise
    logger.info("services ready in %.1f s (rasa %s, actions %s)", time.monotonic() - started, rasa_port, action_port)
    return services


@contextlib.contextmanager
def running_services(settings: Settings | None = None) -> Iterator[RunningServices]:
    """Yield services to talk to: the configured ones when running, else newly started ones."""
    settings = settings or get_settings()
    settings = settings.model_copy(update={"rasa_auth_token": shared_auth_token(settings)})
    if rasa_is_running(settings):
        yield RunningServices(rasa_port=settings.rasa_port, action_port=settings.action_port, auth_token=settings.rasa_auth_token)
        return
    services = start_services(
        settings,
        rasa_port=settings.rasa_port if port_is_free(settings.rasa_port) else None,
        action_port=settings.action_port if port_is_free(settings.action_port) else None,
    )
    try:
        yield services
    finally:
        services.stop()
