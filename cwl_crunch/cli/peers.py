"""``cwl-crunch peers``: the clusters this one federates with, and whether they answer.

Each peer of the config (``[peers.<cluster_id>]`` with ``url`` and ``token``) is asked
who it is with the token it issued to this cluster: it answers if it is up, takes the
token, and is the cluster the config says. Exit status 1 if any does not.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

from cwl_crunch.cli.table import format_table
from cwl_crunch.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("peers", help="this cluster's peers and whether they "
                                                 "answer")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from cwl_crunch.federation import probe  # see cli.main: start-up time

    if not config.peers:
        print(f"cluster {config.cluster_id} has no peers (add [peers.<cluster_id>] with "
              f"url and token to {config.config or config.home / 'config.toml'})")
        return 0
    peers = [config.peers[name] for name in sorted(config.peers)]
    with ThreadPoolExecutor(max_workers=min(8, len(peers))) as pool:
        statuses = list(pool.map(probe, peers))
    rows = [[status.cluster_id, status.url, "yes" if status.answers else "no",
             status.version or "-",
             "-" if status.round_trip is None else f"{status.round_trip * 1000:.0f} ms",
             status.problem or ""]
            for status in statuses]
    print(format_table(["PEER", "URL", "ANSWERS", "VERSION", "ROUND TRIP", "PROBLEM"], rows))
    return 0 if all(status.answers for status in statuses) else 1
