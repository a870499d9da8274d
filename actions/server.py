"""Run the action server in a single process on 127.0.0.1: ``python -m actions.server``.

rasa-sdk's own entry point serves through Sanic's worker manager, which imports the
actions in a manager process and again in a worker process, so the embedding model
sat in memory twice (about 0.3 GB plus 1.2 GB measured on 2 cores). One process
loads it once, before the port opens, so a passing health check means the model is
ready.
"""

from __future__ import annotations

import argparse
import logging

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor

#: The action server has no authentication, so it must never listen beyond loopback.
HOST = "127.0.0.1"
DEFAULT_PORT = 5055
#: Threads per torch operation. Concurrent turns each embed their query in their own
#: worker thread, and Rasa shares the cores, so one thread per operation is enough. With
#: torch's default of one thread per core, a query embedding cost 24-26 ms of CPU instead
#: of 17-22 ms (2 cores, load average 6-8), because waiting OpenMP threads spin.
DEFAULT_TORCH_THREADS = 1

logger = logging.getLogger(__name__)


def main() -> None:
    """Parse ``--port``, load the actions (and the model), and serve until stopped."""
    parser = argparse.ArgumentParser(description="SPIN action server (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1")
    parser.add_argument("--log-level", default="INFO", help="logging level, e.g. INFO or DEBUG")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=DEFAULT_TORCH_THREADS,
        help="threads per torch operation in the embedding model (0 keeps torch's default of one per core)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)

    executor = ActionExecutor()
    executor.register_package("actions")
    app = create_app(executor, cors_origins=None)
    logger.info("action server listening on %s:%s", HOST, args.port)
    app.run(host=HOST, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
