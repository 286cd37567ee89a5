"""``cwl-crunch fsck [--repair]``: verify every manifest and block of the cluster's store.

It works on the store and records database of the home the config names (embedded, or
a server's home on the server's host: ``CWL_CRUNCH_HOME=<its home> cwl-crunch fsck``),
never through the API: hashing every block is the store host's work. It may run while
the cluster runs: every store write is a complete file renamed into place.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from cwl_crunch.cli.table import format_table, human_duration, human_size
from cwl_crunch.config import Config
from cwl_crunch.errors import StoreError

if TYPE_CHECKING:
    from cwl_crunch.records.database import Database
    from cwl_crunch.store.fsck import Damage, Tally

Makers = dict[str, list[tuple[str, str]]]
"""Collection digest -> ``(job uuid, PDH)`` of the jobs whose output or log it is."""

_SHOWN_COLLECTIONS = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fsck", help="verify every manifest and block of the store",
        description="Hash every manifest and block of this home's store and list what is "
        "damaged, with the collections and jobs using it. Exit status 1 if anything is "
        "damaged (and, with --repair, not repaired).")
    parser.add_argument(
        "--repair", action="store_true",
        help="rewrite damaged blocks from a copy where one is known (a put file still "
        "unchanged); make the jobs whose output is still damaged ineligible for reuse, so "
        "that running them again repairs it")
    parser.set_defaults(run=run)


class ProgressLine:
    """``fsck: 1234/5678 blocks, 2.1 GiB, 2 damaged`` redrawn on a terminal, else nothing."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream if stream.isatty() else None

    def show(self, tally: Tally) -> None:
        if self._stream is None:
            return
        self._stream.write(f"\rfsck: {tally.blocks}/{tally.blocks_total} blocks, "
                           f"{human_size(tally.bytes)}, {tally.damaged} damaged ")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.write("\n")
            self._stream.flush()


def run(args: argparse.Namespace, config: Config) -> int:
    from cwl_crunch.records.database import Database  # see cli.main: start-up time
    from cwl_crunch.store.fsck import StoreCheck

    if not (config.store / "blocks").is_dir() and not (config.store / "manifests").is_dir():
        raise StoreError(f"no store at {config.store}: run fsck on the host of the cluster's "
                         "store, with CWL_CRUNCH_HOME set to its home")
    started = time.monotonic()
    progress = ProgressLine(sys.stderr)
    check = StoreCheck(config.store, progress.show)
    try:
        damaged = check.run()
    finally:
        progress.close()
    database = Database(config.database)
    try:
        makers = _makers(database, damaged)
        marked: dict[str, list[str]] = {}
        if args.repair and damaged:
            check.repair_from_put_sources(damaged)
            marked = _mark_unrepaired(database, damaged, makers)
    finally:
        database.close()
    unrepaired = [damage for damage in damaged if damage.repaired_from is None]
    if damaged:
        rows = [_row(damage, makers, marked, repairing=args.repair) for damage in damaged]
        print(format_table(("KIND", "NAME", "PROBLEM", "COLLECTIONS", "JOBS", "STATUS"), rows))
    tally = check.tally
    print(f"fsck: {tally.manifests} manifests and {tally.blocks} blocks "
          f"({human_size(tally.bytes)}) checked in {human_duration(time.monotonic() - started)}"
          f": {len(damaged)} damaged, {len(damaged) - len(unrepaired)} repaired")
    if unrepaired and not args.repair:
        print("fsck: `cwl-crunch fsck --repair` rewrites what has a copy and makes the jobs "
              "that made the rest run again when next asked for", file=sys.stderr)
    return 1 if unrepaired else 0


def _collections_of(damage: Damage, makers: Makers) -> list[str]:
    """The PDHs of the collections damaged through ``damage``."""
    if damage.kind == "manifest":
        return sorted({pdh for _, pdh in makers.get(damage.digest, [])}) or \
            [f"{damage.digest}+?"]
    return damage.collections


def _makers(database: Database, damaged: list[Damage]) -> Makers:
    from cwl_crunch.records import jobs

    digests: list[str] = []
    for damage in damaged:
        digests.extend(pdh.split("+")[0] for pdh in _collections_of(damage, {}))
    with database.reading() as connection:
        return jobs.jobs_with_digests(connection, digests)


def _mark_unrepaired(database: Database, damaged: list[Damage],
                     makers: Makers) -> dict[str, list[str]]:
    """Make the jobs whose output a still-damaged collection is ineligible for reuse;
    returns damage name -> the jobs whose output is damaged through it."""
    from cwl_crunch.records import jobs

    marked: dict[str, list[str]] = {}
    with database.writing() as connection:
        for damage in damaged:
            if damage.repaired_from is not None:
                continue
            problem = f"fsck: {damage.kind} {damage.name}: {damage.problem}"
            for pdh in _collections_of(damage, makers):
                marked.setdefault(damage.name, []).extend(
                    jobs.mark_output_damaged(connection, pdh, problem))
    return marked


def _row(damage: Damage, makers: Makers, marked: dict[str, list[str]], *,
         repairing: bool) -> list[str]:
    collections = _collections_of(damage, makers)
    users = list(dict.fromkeys(uuid for pdh in collections
                               for uuid, _ in makers.get(pdh.split("+")[0], [])))
    if damage.repaired_from is not None:
        status = f"repaired from {damage.repaired_from}"
    elif marked.get(damage.name):
        status = "not repaired: its jobs will run again (not reused) when next submitted"
    elif repairing:
        status = "not repaired: no copy known (put the same files again)"
    else:
        status = "damaged"
    return [damage.kind, damage.name, damage.problem, _shortened(collections) or "-",
            _shortened(users) or "-", status]


def _shortened(names: list[str]) -> str:
    shown = " ".join(names[:_SHOWN_COLLECTIONS])
    more = len(names) - _SHOWN_COLLECTIONS
    return f"{shown} (+{more} more)" if more > 0 else shown
