"""``cwl-crunch get PDH[/path] DEST``: copy a collection, or part of it, out of the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from cwl_crunch.client import open_client
from cwl_crunch.config import Config
from cwl_crunch.store import split_reference


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get",
        help="copy files out of a collection",
        description="Copy a file or directory of a collection to DEST, verifying every "
        "block. Like `cp -r`: into DEST by name if DEST is an existing directory. A whole "
        "collection (REFERENCE without a path) is copied into DEST. REFERENCE is PDH, "
        "PDH/path or keep:PDH/path.",
    )
    parser.add_argument("reference", metavar="REFERENCE")
    parser.add_argument("dest", type=Path, metavar="DEST")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    pdh, path = split_reference(args.reference)
    with open_client(config) as client:
        client.get_collection(pdh, path, args.dest)
    return 0
