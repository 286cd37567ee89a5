"""``cwl-crunch put PATH...``: store files and directories as one collection, print its PDH."""

from __future__ import annotations

import argparse
from pathlib import Path

from cwl_crunch.client import open_client
from cwl_crunch.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "put",
        help="store files and directories as a collection",
        description="Copy files and directories into the store as one collection, each at "
        "its top level by its name, and print the collection's portable data hash.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument("--resident", action="store_true",
                        help="the collection must stay on this cluster: peers may not "
                             "read it, and what jobs make of it stays too unless a "
                             "release rule lets it go (see cwl-crunch release)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    with open_client(config) as client:
        pdh = client.put_paths(args.paths)
        if args.resident:
            client.make_resident(pdh, "stored resident")
        print(pdh)
    return 0
