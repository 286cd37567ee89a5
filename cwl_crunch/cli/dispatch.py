"""``cwl-crunch dispatch``: run queued jobs of this cluster home in the foreground.

Programs using the SDK run a dispatcher while they wait; this command is for jobs left
queued when such a program ended, or to keep a cluster home busy from a terminal.
"""

from __future__ import annotations

import argparse
import sys
import time

from cwl_crunch.client.embedded import EmbeddedClient
from cwl_crunch.config import Config
from cwl_crunch.dispatch.processes import this_worker
from cwl_crunch.records import jobs


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dispatch", help="run queued jobs until interrupted")
    parser.add_argument("--until-idle", action="store_true",
                        help="return once no job is queued or running here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    client = EmbeddedClient(config)
    progress = sys.stderr.isatty()
    try:
        client.dispatcher.start()
        while True:
            queued, running, ended = _counts(client)
            if progress:
                print(f"\rjobs: {queued} queued, {running} running here, {ended} ended "
                      "since start", end="", file=sys.stderr, flush=True)
            if args.until_idle and not queued and not running:
                break
            time.sleep(max(config.poll_interval, 0.5 if progress else 0.2))
    finally:
        if progress:
            print(file=sys.stderr)
        client.close()
    return 0


def _counts(client: EmbeddedClient) -> tuple[int, int, int]:
    """Queued jobs (any host), jobs running on this host, jobs ended since the start."""
    with client.database.reading() as connection:
        queued = jobs.count_queued(connection)
        running = len(jobs.running_on_host(connection, this_worker().host))
    return queued, running, client.dispatcher.jobs_ended
