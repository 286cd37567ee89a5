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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    with open_client(config) as client:
        print(client.put_paths(args.paths))
    return 0
