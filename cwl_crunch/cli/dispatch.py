"""``cwl-crunch dispatch``: run queued jobs of this cluster home in the foreground.

Programs using the SDK run a dispatcher while they wait; this command is for jobs left
queued when such a program ended, or to keep a cluster home busy from a terminal.
``cwl-crunch server`` runs it as its child (``--parent``, ``--job-api-url``): SIGUSR1
wakes it, SIGTERM stops it after its running jobs end. Without ``--job-api-url`` it
serves the API to its jobs itself (server.job_api).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from cwl_crunch.config import Config
from cwl_crunch.dispatch.child import READY, WAKE_SIGNAL

if TYPE_CHECKING:
    from cwl_crunch.core import ClusterCore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dispatch", help="run queued jobs until interrupted")
    parser.add_argument("--until-idle", action="store_true",
                        help="return once no job is queued or running here")
    parser.add_argument("--parent", type=int, metavar="PID",
                        help="stop once process PID (a cwl-crunch server) has ended")
    parser.add_argument("--job-api-url", metavar="URL",
                        help="where the jobs reach the cluster (a server passes its URL; "
                             "default: an API served from here)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from cwl_crunch.core import ClusterCore  # see cli.main: start-up time
    from cwl_crunch.server.job_api import JobApi

    # A server's child: its jobs are a server's (see worker/isolation.py).
    core = ClusterCore(config, job_api=args.job_api_url or JobApi,
                       isolation_required=args.parent is not None)
    progress = sys.stderr.isatty() and args.parent is None
    stopping = threading.Event()
    _handle_signals(core, stopping)
    if args.parent is not None:
        sys.stdout.buffer.write(READY + b"\n")
        sys.stdout.flush()
    try:
        core.start_dispatching()
        while not stopping.is_set():
            (queued, running), ended = core.job_counts(), core.jobs_ended_here()
            if progress:
                print(f"\rjobs: {queued} queued, {running} running here, {ended} ended "
                      "since start", end="", file=sys.stderr, flush=True)
            if args.until_idle and not queued and not running:
                break
            if args.parent is not None and os.getppid() != args.parent:
                _say_parent_gone(args.parent, running)
                break
            stopping.wait(max(config.poll_interval, 0.5 if progress else 0.2))
    finally:
        if progress:
            print(file=sys.stderr)
        core.close()
    return 0


def _say_parent_gone(parent: int, running: int) -> None:
    """The server is gone (its jobs' programs cannot reach it): this child starts
    nothing more, so that a restarted server's own child is the one that does. What runs
    here goes on to its end, recorded in the records as always, and its programs keep
    trying to reach the server until it is back (``http_transport.JOB_RECONNECT``)."""
    print(f"cwl-crunch dispatch: the server (process {parent}) is gone: starting no more "
          f"jobs; {running} running here go on to their end", file=sys.stderr, flush=True)


def _handle_signals(core: ClusterCore, stopping: threading.Event) -> None:
    def wake(signum: int, frame: FrameType | None) -> None:
        core.wake_dispatcher()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(WAKE_SIGNAL, wake)
    signal.signal(signal.SIGTERM, stop)
