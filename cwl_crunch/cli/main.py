"""``cwl-crunch``: look at and move what a cluster holds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cwl_crunch.cli import (
    dispatch,
    fsck,
    get,
    jobs,
    ls,
    peers,
    put,
    release,
    server,
    token,
    worker,
)
from cwl_crunch.config import load_config
from cwl_crunch.errors import CrunchError

SUBCOMMANDS = (put, ls, get, jobs, dispatch, worker, server, token, release, peers, fsck)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cwl-crunch", description="Jobs and collections of a cwl-crunch cluster."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, load_config()))
    except CrunchError as error:
        if args.debug:
            raise
        print(f"cwl-crunch {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0  # `cwl-crunch jobs list | head` closed the pipe: not an error


if __name__ == "__main__":
    sys.exit(main())
