"""``cwl-crunch server``: serve this cluster's records, store and dispatcher over HTTP.

Clients reach it with ``CWL_CRUNCH_API_URL`` and a token from ``cwl-crunch token create``
(run where the server's database is). The process tree page is at the same URL.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from cwl_crunch.config import Config
from cwl_crunch.dispatch import DISPATCHERS

DEFAULT_LISTEN = "127.0.0.1:8642"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("server", help="serve this cluster over HTTP")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve on (default {DEFAULT_LISTEN})")
    parser.add_argument("--database", metavar="URL",
                        help="records database: sqlite:///PATH or postgresql://... "
                             "(default: the config's database_url)")
    parser.add_argument("--store", metavar="DIR", help="collection store directory "
                                                       "(default: the config's store_dir)")
    parser.add_argument("--url", help="URL jobs use to reach this server (default: "
                                      "http://HOST:PORT of --listen)")
    parser.add_argument("--dispatcher", choices=sorted(DISPATCHERS),
                        help="what runs jobs of one core or more (default: the config's "
                             "dispatcher, local); with slurm, jobs under one core still "
                             "run on this host")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    # Here, not at the top: every cwl-crunch command (a SLURM job's worker too) would
    # pay for importing FastAPI and uvicorn (a quarter of a second).
    from cwl_crunch.server.serve import make_server, open_core, parse_listen
    from cwl_crunch.server.sockets import bound_socket

    host, port = parse_listen(args.listen)
    changes = {}
    if args.database:
        changes["database_url"] = args.database
    if args.store:
        changes["store_dir"] = args.store
    if args.dispatcher:
        changes["dispatcher"] = args.dispatcher
    config = config.replace(**changes, api_url="", api_token="")
    sock = bound_socket(host, port)
    url = args.url or f"http://{host}:{sock.getsockname()[1]}"
    core = open_core(config, url)
    print(f"cwl-crunch server for cluster {core.cluster_id} at {url} "
          f"(database {core.database_url}, store {config.store}, "
          f"dispatcher {config.dispatcher})", file=sys.stderr, flush=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler it found: with the default one, the process would die before closing the
    # core (which stops the dispatchers).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        make_server(core, grace=5).run(sockets=[sock])
    finally:
        core.close()
        sock.close()
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
