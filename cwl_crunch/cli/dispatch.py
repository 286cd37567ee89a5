"""``cwl-crunch dispatch``: run queued jobs of this cluster home in the foreground.

Programs using the SDK run a dispatcher while they wait; this command is for jobs left
queued when such a program ended, or to keep a cluster home busy from a terminal.
"""

from __future__ import annotations

import argparse
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
    try:
        client.dispatcher.start()
        while not (args.until_idle and _idle(client)):
            time.sleep(max(config.poll_interval, 0.2))
    finally:
        client.close()
    return 0


def _idle(client: EmbeddedClient) -> bool:
    with client.database.reading() as connection:
        return not jobs.queued_candidates(connection, 1) and not jobs.running_on_host(
            connection, this_worker().host)
