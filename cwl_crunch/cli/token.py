"""``cwl-crunch token create | list | revoke``: persons' API tokens of this cluster.

Run where the cluster's records database is (the server's host), like ``create``: the
token table tells no person's token from another's (there is no owner to check), so
through the API one token could list and revoke every other, and a leaked token could
lock out everyone. Only the host's records decide who holds tokens. A token is printed
once, at its creation; only its hash is kept, and ``list`` never shows that either.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cwl_crunch.cli.on_host import add_database_option, host_core, with_database
from cwl_crunch.cli.table import format_table
from cwl_crunch.config import Config
from cwl_crunch.errors import RecordsError

if TYPE_CHECKING:
    from cwl_crunch.records.database import Database


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="make, list and revoke API tokens")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="print a new person's token (or a peer's)")
    create.add_argument("--peer", metavar="CLUSTER_ID",
                        help="a token for that peer cluster, which may only do what "
                             "federation needs (put it in that cluster's config as "
                             "[peers.<this cluster's id>] token)")
    listing = actions.add_parser("list", help="persons' tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="make a person's token stop working at once")
    revoke.add_argument("uuid", help="the token's UUID (the middle part of the token)")
    add_database_option(create, listing, revoke)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    config = with_database(config, args.database)
    if args.action == "create":
        with host_core(config) as core:
            print(core.create_token(peer_id=args.peer))
        return 0
    from cwl_crunch.records.tokens import person_tokens, revoke_person_token

    with _existing_database(config.database) as database:
        if args.action == "list":
            with database.reading() as connection:
                tokens = person_tokens(connection)
            rows = [[token.uuid, _when(token.created_at), token.peer_id or "-",
                     "yes" if token.revoked else "no"] for token in tokens]
            print(format_table(["UUID", "CREATED", "PEER", "REVOKED"], rows))
            return 0
        with database.writing() as connection:
            revoked = revoke_person_token(connection, args.uuid)
        print(f"{args.uuid} {'revoked' if revoked else 'was already revoked'}")
        return 0


@contextlib.contextmanager
def _existing_database(url: str) -> Iterator[Database]:
    """The records database; an error, not a new empty one, if its SQLite file is not
    there (a mistyped home must not read as "no tokens")."""
    from sqlalchemy.engine import make_url  # see cli.main: start-up time
    from sqlalchemy.exc import ArgumentError

    from cwl_crunch.records.database import Database, shown

    try:
        file = make_url(url).database if url.startswith("sqlite") else None
    except ArgumentError:
        file = None  # Database says what is wrong with it
    if file not in (None, "", ":memory:") and not Path(str(file)).is_file():
        raise RecordsError(f"no records database at {shown(url)}: run this on the "
                           "server's host, with its CWL_CRUNCH_HOME or --database")
    database = Database(url)
    try:
        yield database
    finally:
        database.close()


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
