"""Benchmark knowledge-base question turns through Rasa and the action server.

Run from the repository root (not collected by pytest)::

    .venv/bin/python tests/benchmarks/bench_turns.py [--turns 200] [--long 1000]

It starts the services on free ports with a fresh SQLite database, then measures:
time from start to the first answer, sequential turn latency (median, p95), throughput
with concurrent clients, turn 10 versus turn N of one conversation, and the resident
memory of all service processes. For the sequential and the concurrent phase it also
reports the CPU time per turn of the action server, of Rasa and of this client, which
varies far less than latency when other programs share the machine, the cores those
three used on average (turns per second times CPU time per turn), and the 1-minute
load average. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bot.channels.base import IncomingMessage
from bot.rasa_client import RasaClient
from bot.services import start_services
from bot.settings import Settings, get_settings
from bot.storage.db import create_db_engine
from bot.storage.migrate import upgrade

QUESTIONS = [
    "Làm sao để giảm bao bì nhựa cho bánh kẹo?",
    "How can a small dye house use less water?",
    "lam sao tiet kiem dien trong xuong may",
    "What is the Vietnam Green Label?",
    "តើការផលិតស្អាតជាងមុនគឺជាអ្វី?",
    "ການອອກແບບເພື່ອຄວາມຍືນຍົງແມ່ນຫຍັງ?",
    "Do I need FSC certification to export furniture to the EU?",
    "Chứng nhận GOTS yêu cầu bao nhiêu phần trăm sợi hữu cơ?",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def tree_rss_mb(pids: list[int]) -> float:
    """Return the summed VmRSS of ``pids`` and all their descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total_kb = 0
    stack = list(pids)
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def process_rss_mb(pid: int) -> float:
    """Return the VmRSS of process ``pid`` alone, without its children, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of process ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    """Return the 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


class CpuMeter:
    """CPU time per turn of the action server, Rasa and this client between start() and stop()."""

    def __init__(self, action_pid: int, rasa_pid: int) -> None:
        self.pids = {"action_server": action_pid, "rasa": rasa_pid}
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        times = os.times()
        now = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        now["client"] = times.user + times.system
        return now

    def start(self) -> None:
        self._start = self._now()

    def stop(self, turns: int) -> dict[str, float]:
        """Return milliseconds of CPU per turn by process, and their sum as "total"."""
        end = self._now()
        result = {name: round(1000 * (end[name] - self._start[name]) / turns, 1) for name in end}
        result["total"] = round(sum(result.values()), 1)
        return result


async def timed_turn(client: RasaClient, user: str, text: str) -> float:
    started = time.perf_counter()
    replies = await client.send(IncomingMessage(channel="bench", external_id=user, text=text))
    elapsed = (time.perf_counter() - started) * 1000
    if not replies:
        raise RuntimeError(f"no reply to {text!r}")
    return elapsed


async def measure(settings: Settings, meter: CpuMeter, turns: int, long_turns: int, clients: int) -> dict[str, object]:
    client = RasaClient(settings)
    results: dict[str, object] = {}
    try:
        for question in QUESTIONS:  # warm-up: model caches, SQLite, HTTP connections
            await timed_turn(client, "warmup", question)

        load_before = load_average()
        meter.start()
        started = time.perf_counter()
        latencies = [await timed_turn(client, f"seq-{i % 20}", QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
        elapsed = time.perf_counter() - started
        cpu = meter.stop(turns)
        results["sequential_ms"] = {
            "turns": turns,
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "cpu_ms_per_turn": cpu,
            "cores_used": round(cpu["total"] * turns / elapsed / 1000, 2),
            "load_average": [load_before, load_average()],
        }

        async def worker(index: int, count: int) -> None:
            for turn in range(count):
                await timed_turn(client, f"conc-{index}", QUESTIONS[(index + turn) % len(QUESTIONS)])

        per_client = max(1, turns // clients)
        load_before = load_average()
        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(worker(index, per_client) for index in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = meter.stop(per_client * clients)
        results["throughput"] = {
            "clients": clients,
            "turns": per_client * clients,
            "turns_per_second": round(per_client * clients / elapsed, 1),
            "cpu_ms_per_turn": cpu,
            "cores_used": round(cpu["total"] * per_client * clients / elapsed / 1000, 2),
            "load_average": [load_before, load_average()],
        }

        user = f"long-{uuid.uuid4().hex[:8]}"
        window: dict[int, list[float]] = {}
        for turn in range(1, long_turns + 1):
            elapsed_ms = await timed_turn(client, user, QUESTIONS[turn % len(QUESTIONS)])
            for mark in (10, long_turns):
                if mark - 5 < turn <= mark + 5 or (mark == long_turns and turn > long_turns - 10):
                    window.setdefault(mark, []).append(elapsed_ms)
        early = statistics.median(window[10])
        late = statistics.median(window[long_turns])
        results["long_conversation_ms"] = {
            "turn_10_median": round(early, 1),
            f"turn_{long_turns}_median": round(late, 1),
            "ratio": round(late / early, 2),
        }
    finally:
        await client.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200, help="sequential turns to time")
    parser.add_argument("--long", type=int, default=1000, help="turns in the long conversation")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for throughput")
    parser.add_argument(
        "--database-url",
        default="",
        help="SQLAlchemy URL of an empty database to use (default: a new SQLite file in a temporary folder)",
    )
    args = parser.parse_args()

    database_url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='spin-bench-')) / 'spin.db'}"
    base = get_settings().model_copy(update={"database_url": database_url})
    upgrade(create_db_engine(base.database_url))

    started = time.perf_counter()
    services = start_services(base)
    settings = services.settings(base)
    try:
        client_time = asyncio.run(_first_answer(settings))
        results: dict[str, object] = {
            "start_to_first_answer_s": round(time.perf_counter() - started, 1),
            "first_turn_ms": round(client_time, 1),
        }
        action_process, rasa_process = services.processes  # started in this order by start_services
        meter = CpuMeter(action_process.pid, rasa_process.pid)
        results.update(asyncio.run(measure(settings, meter, args.turns, args.long, args.clients)))
        results["rss_mb_all_services"] = round(tree_rss_mb([process.pid for process in services.processes] + [os.getpid()]), 0)
        results["rss_mb"] = {
            "action_server": round(tree_rss_mb([action_process.pid]), 0),
            "rasa": round(tree_rss_mb([rasa_process.pid]), 0),
            "client": round(process_rss_mb(os.getpid()), 0),
        }
    finally:
        services.stop()
    results["cpu_count"] = os.cpu_count()
    print(json.dumps(results, indent=2, ensure_ascii=False))


async def _first_answer(settings: Settings) -> float:
    client = RasaClient(settings)
    try:
        return await timed_turn(client, "first", QUESTIONS[0])
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
