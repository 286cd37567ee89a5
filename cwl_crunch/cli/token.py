"""``cwl-crunch token create``: a new person's API token for this cluster.

Run where the cluster's records database is (the server's host): the token is printed
once and only its hash is kept.
"""

from __future__ import annotations

import argparse

from cwl_crunch.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="make API tokens")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="print a new person's token")
    create.add_argument("--database", metavar="URL",
                        help="records database (default: the config's database_url)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    from cwl_crunch.client.embedded import EmbeddedClient  # see cli.main: start-up time

    if args.database:
        config = config.replace(database_url=args.database)
    with EmbeddedClient(config.replace(api_url="", api_token="")) as core:
        print(core.create_token())
    return 0
