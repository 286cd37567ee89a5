"""``cwl-crunch jobs list | show | tree | logs | cancel | wait``."""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from cwl_crunch.cli.job_tree import parent_text, render_tree
from cwl_crunch.cli.table import format_table, human_duration
from cwl_crunch.client import ClusterClient, JobFilter, JobRecord, open_client
from cwl_crunch.config import Config
from cwl_crunch.model import EVERY_JOB, cluster_of
from cwl_crunch.model.codec import spec_to_dict

LOG_FILES = ("worker.txt", "stdout.txt", "stderr.txt")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("jobs", help="look at and cancel jobs")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="recent jobs, newest first")
    listing.add_argument("--all", action="store_true", help="children too, not only top level")
    listing.add_argument("--state", action="append", help="only jobs in this state")
    listing.add_argument("--limit", type=_count(1), default=50,
                         help="at most this many (default 50)")
    for name, helptext in (("show", "one job's record"), ("tree", "a job and its descendants"),
                           ("logs", "a job's worker log, stdout and stderr"),
                           ("cancel", "cancel a job and its descendants")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("uuid")
        if name == "logs":
            action.add_argument("--tail", type=_count(0), metavar="N",
                                help="only the last N lines of each log")
    waiting = actions.add_parser("wait", help="wait for a job to end; exit 0 if it succeeded")
    waiting.add_argument("uuid")
    waiting.add_argument("--timeout", type=float, metavar="SECONDS",
                         help="give up after this long (exit code 2); default: no limit")
    parser.set_defaults(run=run)


def _count(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value

    return parse


def run(args: argparse.Namespace, config: Config) -> int:
    with open_client(config) as client:
        action = {"list": _list, "show": _show, "tree": _tree, "logs": _logs,
                  "cancel": _cancel, "wait": _wait}[args.action]
        return action(client, args)


def _list(client: ClusterClient, args: argparse.Namespace) -> int:
    states = frozenset(args.state) if args.state else None
    # A page at a time: a server answers at most JOB_PAGE_LIMIT jobs per request.
    records = client.iter_jobs(JobFilter(top_level=not args.all, states=states,
                                         limit=args.limit))
    rows = [[job.uuid, job.name or "-", job.state, job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
             human_duration(job.duration), "yes" if job.reused_job_uuid else "",
             job.output_pdh or "-"] for job in records]
    print(format_table(["UUID", "NAME", "STATE", "CREATED", "DURATION", "REUSED", "OUTPUT"],
                       rows))
    return 0


def _show(client: ClusterClient, args: argparse.Namespace) -> int:
    job = client.get_job(args.uuid)
    fields: dict[str, Any] = {
        "uuid": job.uuid, "name": job.name, "state": job.state,
        "waiting for": job.queue_reason,
        "submitted by peer": job.peer_id, "for person": job.remote_owner,
        "parent": parent_text(job.parent_uuid, client.cluster_id),
        "created": job.created_at.isoformat(),
        "started": job.started_at.isoformat() if job.started_at else None,
        "finished": job.finished_at.isoformat() if job.finished_at else None,
        "duration": human_duration(job.duration), "exit code": job.exit_code,
        "end reason": job.end_reason, "failure reason": job.failure_reason,
        "backend": job.backend, "backend job id": job.backend_job_id,
        "reused job": job.reused_job_uuid,
        "output": job.output_pdh, "log": job.log_pdh, "reuse key": job.reuse_key,
        "image digest": job.image_digest, "impure": job.impure,
    }
    for what, pdh in (("output", job.output_pdh), ("log", job.log_pdh)):
        found = client.residency(pdh) if pdh else None
        if found is not None:
            fields[f"{what} residency"] = found.describe()
    spec = spec_to_dict(job.spec)
    fields.update({k.replace("_", " "): v for k, v in spec.items() if k != "name"})
    rows = [[name, "-" if value is None else str(value)] for name, value in fields.items()]
    print(format_table(["FIELD", "VALUE"], rows))
    return 0


def _tree(client: ClusterClient, args: argparse.Namespace) -> int:
    from cwl_crunch.federation.links import handed_to, links_for  # see cli.main

    home, links = client.cluster_id, links_for(client)
    handed: dict[str, str] = {}  # a home step handed to a peer -> that peer

    def children(uuid: str) -> list[JobRecord]:
        """Here, and for a step handed to a peer (or a job there), on the peer: the
        remote subtree inline, read through this cluster (its peer tokens)."""
        cluster = cluster_of(uuid)
        if cluster != home:
            return links.remote_children(cluster, uuid)
        found = list(client.iter_jobs(JobFilter(parent_uuid=uuid, limit=EVERY_JOB)))
        for job in found:
            if (peer := handed_to(job)) is not None:
                handed[job.uuid] = peer
        peer = handed.get(uuid)
        return found + (links.remote_children(peer, uuid) if peer else [])

    root = client.get_job(args.uuid)
    if (peer := handed_to(root)) is not None:
        handed[root.uuid] = peer
    print("\n".join(render_tree(root, children, home)))
    return 0


def _logs(client: ClusterClient, args: argparse.Namespace) -> int:
    if cluster_of(args.uuid) != client.cluster_id:
        return _remote_logs(client, args)
    job = client.get_job(args.uuid)
    if job.log_pdh is None:
        print(f"job {job.uuid} is {job.state} and has no log collection yet", file=sys.stderr)
        return 1
    present = {entry.path for entry in client.list_collection(job.log_pdh)}
    out = sys.stdout.buffer
    sys.stdout.flush()
    ended_line = True
    for name in LOG_FILES:
        if name not in present:
            continue
        # As tail(1) does: a log whose last line has no newline does not hide the next
        # log's header at the end of that line.
        out.write(f"{'' if ended_line else chr(10)}==> {name} <==\n".encode())
        chunks = client.read_file(job.log_pdh, name)
        for chunk in chunks if args.tail is None else [last_lines(chunks, args.tail)]:
            out.write(chunk)
            ended_line = chunk.endswith(b"\n") if chunk else ended_line
        out.flush()
    return 0


def _remote_logs(client: ClusterClient, args: argparse.Namespace) -> int:
    """A job of a peer (below a step this cluster handed there), read through this
    cluster's server with its peer token: the peer refuses resident logs."""
    from cwl_crunch.client.http import HttpClient

    peer = cluster_of(args.uuid)
    if not isinstance(client, HttpClient):
        print(f"job {args.uuid} is on cluster {peer}: read its logs through a server "
              "(CWL_CRUNCH_API_URL) that has it as a peer", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    for name in LOG_FILES:
        texts, offset = [], 0
        while True:
            answer = client.get_json(f"/peers/{peer}/jobs/{args.uuid}/logs/{name}"
                                     f"?offset={offset}")
            texts.append(str(answer["text"]))
            if answer["source"] == "none" or answer["offset"] == offset or answer["final"]:
                break
            offset = int(answer["offset"])
        text = "".join(texts).encode()
        if not text:
            continue
        chunks = [text] if args.tail is None else [last_lines([text], args.tail)]
        out.write(f"==> {name} <==\n".encode() + b"".join(chunks))
        out.flush()
    return 0


def last_lines(chunks: Iterable[bytes], count: int) -> bytes:
    """The last ``count`` lines of the text, as tail(1) prints them: a last line without
    a newline counts as a line. Holds only those lines, however long the log."""
    kept: deque[bytes] = deque(maxlen=count)
    partial = b""
    for chunk in chunks:
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        if count:
            kept.extend(line + b"\n" for line in lines[-count:])
    if partial and count:
        kept.append(partial)
    return b"".join(kept)


def _cancel(client: ClusterClient, args: argparse.Namespace) -> int:
    job = client.cancel(args.uuid)
    print(f"{job.uuid} {job.state}{' (cancel requested)' if job.cancel_requested else ''}")
    return 0


def _wait(client: ClusterClient, args: argparse.Namespace) -> int:
    """How a ``--submit`` run is followed again after its command stopped waiting."""
    job = client.get_job(args.uuid)  # an unknown UUID is an error at once
    job = client.wait([job.uuid], timeout=args.timeout)[0]
    extra = [f"exit code {job.exit_code}" if job.exit_code is not None else "",
             f"output {job.output_pdh}" if job.output_pdh else "",
             f"({job.failure_reason})" if job.failure_reason else ""]
    print(" ".join([job.uuid, job.state, *filter(None, extra)]))
    if not job.finished:
        return 2
    return 0 if job.succeeded else 1
