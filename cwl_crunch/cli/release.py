"""``cwl-crunch release add | list | remove``: what may produce releasable results from
resident data on this cluster.

Run where the cluster's records are (the server's host), like ``token``: approving what
may leave is the site administrator's decision, which no API token can make. A job that
read resident data has a released output when its image's content digest (and the
beginning of its command, if the rule names one) matches a rule in force at its end.
"""

from __future__ import annotations

import argparse
import re
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cwl_crunch.cli.on_host import add_database_option, host_core, with_database
from cwl_crunch.cli.table import format_table
from cwl_crunch.config import Config
from cwl_crunch.errors import ImageError

if TYPE_CHECKING:
    from cwl_crunch.core import ClusterCore

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "release", help="approve images whose results may leave this cluster",
        description="Release rules: a job that read resident data has a released output "
        "(it may travel to peers) when its image digest, and the start of its command if "
        "the rule names one, match a rule in force when the job ends. Jobs run on the "
        "host never match.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="approve an image (and optionally a command)")
    add.add_argument("--image", required=True,
                     help="the image's content digest (sha256:...), or a name this "
                          "cluster's container engine has (its digest is recorded)")
    add.add_argument("--command", metavar="PREFIX",
                     help="the command must begin with these words (shell-quoted)")
    add.add_argument("--note", required=True, help="why: shown with every release")
    listing = actions.add_parser("list", help="the rules in force")
    listing.add_argument("--all", action="store_true", help="removed rules too")
    remove = actions.add_parser("remove", help="withdraw a rule (jobs ending later are "
                                               "not released by it)")
    remove.add_argument("uuid")
    add_database_option(add, listing, remove)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    with host_core(with_database(config, args.database)) as core:
        if args.action == "add":
            digest = _digest(core, args.image)
            prefix = shlex.split(args.command) if args.command else None
            rule = core.add_release_rule(digest, prefix, args.note)
            print(rule.uuid)
        elif args.action == "remove":
            rule = core.remove_release_rule(args.uuid)
            print(f"{rule.uuid} removed")
        else:
            rules = core.release_rules(removed=args.all)
            rows = [[rule.uuid, rule.image_digest,
                     shlex.join(rule.command_prefix) if rule.command_prefix else "(any)",
                     _when(rule.created_at),
                     _when(rule.removed_at) if rule.removed_at else "-", rule.note]
                    for rule in rules]
            print(format_table(["UUID", "IMAGE", "COMMAND", "ADDED", "REMOVED", "NOTE"],
                               rows))
    return 0


def _digest(core: ClusterCore, image: str) -> str:
    if DIGEST.match(image):
        return image
    digest = core.image_digest_here(image)
    if digest is None:
        raise ImageError(f"image {image!r} is not a content digest (sha256:<64 hex>) "
                         "and this cluster's container engine has no image of that name")
    return digest


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
