"""``cwl-crunch ls PDH[/path]``: the files and directories of a collection, with sizes."""

from __future__ import annotations

import argparse
import re

from cwl_crunch.cli.table import format_table, human_size
from cwl_crunch.client import open_client
from cwl_crunch.config import Config
from cwl_crunch.model import CollectionEntry
from cwl_crunch.store import split_reference

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list a collection",
        description="List the files and directories of a collection (or below a path in "
        "it), recursively. REFERENCE is PDH, PDH/path or keep:PDH/path.",
    )
    parser.add_argument("reference", metavar="REFERENCE")
    parser.add_argument("--bytes", action="store_true", help="exact sizes in bytes")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    pdh, path = split_reference(args.reference)
    with open_client(config) as client:
        entries = client.list_collection(pdh, path)
        residency = client.residency(pdh)
    rows = [[_shown_path(entry), _shown_size(entry, exact=args.bytes)] for entry in entries]
    print(format_table(["PATH", "SIZE"], rows))
    if residency is not None:
        print(f"{residency.describe()}")
    return 0


def _shown_path(entry: CollectionEntry) -> str:
    # A newline in a file name must not break the table into a fake extra row.
    shown = _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group()):02x}", entry.path)
    return f"{shown}/" if entry.kind == "dir" else shown


def _shown_size(entry: CollectionEntry, *, exact: bool) -> str:
    if entry.kind == "dir":
        return "-"
    return str(entry.size) if exact else human_size(entry.size)
