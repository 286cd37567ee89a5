"""``cwl-crunch-runner --cluster URL --submit``: the runner itself as a job on the cluster.

The workflow is packed into one document, local input files are stored on the cluster
(only blocks it lacks travel), and a job runs ``cwl-crunch-runner`` there with its own
token, like any program: its steps become its children. Its output collection is the
workflow's output files; its stdout (in its log collection) the output object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from cwltool.context import LoadingContext
from cwltool.load_tool import fetch_document, resolve_and_validate_document
from cwltool.main import load_job_order, print_pack
from cwltool.utils import visit_class

from cwl_crunch.cwl.containers import image_names
from cwl_crunch.cwl.layout import KEEP_PREFIX, referenced_pdhs
from cwl_crunch.cwl.path_mapper import Uploads
from cwl_crunch.errors import ApiError
from cwl_crunch.model import ClusterClient, JobFilter, JobRecord
from cwl_crunch.model.runs import RUN_FOLDER_FILES, RunRequest, relocated, runner_spec

SERVER_PATIENCE = 600.0
"""Seconds of not reaching the cluster (killed, restarting) before ``--submit`` stops
waiting; the run goes on there, and ``cwl-crunch jobs wait UUID`` follows it again."""
RETRY_PAUSE = 1.0
"""Seconds between attempts to reach the cluster again."""
REMOTE_WAIT = 20.0
"""Seconds of one wait for a run on a peer (on its event stream, through the cluster)."""


def submit_run(args: argparse.Namespace, client: ClusterClient) -> int:
    """Submit the run; with ``--wait``, wait and fetch its outputs like a local run."""
    client.caller_job()  # a refused token is said before any upload
    packed, inputs = _packed_workflow(args), _stored_inputs(args, client)
    with tempfile.TemporaryDirectory(prefix="cwl-crunch-submit-") as scratch:
        folder = Path(scratch) / "run"
        folder.mkdir()
        (folder / "workflow.cwl").write_text(packed)
        (folder / "inputs.json").write_text(json.dumps(inputs, indent=2))
        pdh = client.put_paths([folder / name for name in RUN_FOLDER_FILES])
    name = Path(str(args.workflow)).name
    if args.runner_cluster:
        images = dict.fromkeys(image_names(json.loads(packed)), "") \
            if args.use_container else {}
        return _submit_to_peer(args, client, RunRequest(
            pdh, tuple(sorted(referenced_pdhs(inputs))), name, not args.disable_reuse,
            bool(args.use_container), images=images))
    record = client.submit(runner_spec(
        pdh, referenced_pdhs(inputs), name=name,
        reuse=not args.disable_reuse, use_container=bool(args.use_container)))
    if not args.wait:
        print(record.uuid)
        return 0
    print(f"cwl-crunch-runner: run {record.uuid} submitted; waiting (Ctrl-C stops waiting, "
          "not the run)", file=sys.stderr)
    final = _wait_with_progress(client, record, quiet=args.quiet)
    if final is None:
        print(f"cwl-crunch-runner: stopped waiting. The run {record.uuid} goes on if the "
              f"cluster is back: follow it with `cwl-crunch jobs wait {record.uuid}` (with "
              "this command's CWL_CRUNCH_API_URL and CWL_CRUNCH_API_TOKEN)", file=sys.stderr)
        return 1
    return _report(client, final, Path(args.outdir or os.getcwd()))


def _submit_to_peer(args: argparse.Namespace, client: ClusterClient,
                    request: RunRequest) -> int:
    """``--runner-cluster ID``: the run's runner goes to that peer of the cluster, handed
    there by the cluster (the person needs its token only); followed through it, and its
    results pulled home before they are fetched."""
    from cwl_crunch.federation.links import links_for

    links = links_for(client)
    remote = links.hand_run(args.runner_cluster, request)
    if not args.wait:
        print(remote.uuid)
        return 0
    print(f"cwl-crunch-runner: run {remote.uuid} submitted to cluster {args.runner_cluster} "
          "through this one; waiting (Ctrl-C stops waiting, not the run)", file=sys.stderr)
    record = remote
    while not record.finished:
        try:
            record = links.wait_remote(args.runner_cluster, remote.uuid, REMOTE_WAIT)
        except ApiError as error:
            if error.status not in (None, 502):
                raise
            time.sleep(RETRY_PAUSE)
    if record.complete and record.exit_code == 0:
        record = links.pull_results(args.runner_cluster, remote.uuid)
    return _report(client, record, Path(args.outdir or os.getcwd()))


def _packed_workflow(args: argparse.Namespace) -> str:
    loading = LoadingContext(vars(args))
    loading, document, uri = fetch_document(str(args.workflow), loading)
    loading, uri = resolve_and_validate_document(loading, document, uri)
    return print_pack(loading, uri)


def _stored_inputs(args: argparse.Namespace, client: ClusterClient) -> dict[str, Any]:
    """The input object with every local File and Directory stored on the cluster."""
    job_order, basedir, _ = load_job_order(args, sys.stdin, None, [], str(args.workflow))
    inputs: dict[str, Any] = dict(job_order or {})
    uploads = Uploads(client)

    def store(obj: dict[str, Any]) -> None:
        location = str(obj.get("location") or obj.get("path") or "")
        if not location or location.startswith((KEEP_PREFIX, "_:", "http:", "https:")):
            return
        local = urllib.parse.unquote(urllib.parse.urlsplit(location).path) \
            if location.startswith("file://") else os.path.join(basedir, location)
        obj["location"] = uploads.keep_location(local)
        obj.pop("path", None)
        obj.pop("listing", None)  # the stored directory brings its own

    visit_class(inputs, ("File", "Directory"), store)
    inputs.pop("id", None)
    inputs["$namespaces"] = {"keep": KEEP_PREFIX}  # so cwltool takes keep: as a scheme
    return inputs


def _wait_with_progress(client: ClusterClient, record: JobRecord, *,
                        quiet: bool) -> JobRecord | None:
    """The run's final record; None if the cluster could not be reached for
    ``SERVER_PATIENCE`` seconds."""
    show = not quiet and sys.stderr.isatty()
    away = Absence(record.uuid, show=show)
    while True:
        try:
            final = client.wait([record.uuid], timeout=2.0)[0]
            steps = client.list_jobs(JobFilter(parent_uuid=record.uuid, limit=10_000)) \
                if show and not final.finished else []
        except ApiError as error:
            if error.status is not None:
                raise  # the cluster answered: waiting longer would not change its answer
            if not away.note(error):
                return None
            time.sleep(RETRY_PAUSE)
            continue
        away.over()
        if final.finished:
            break
        if show:
            done = sum(step.finished for step in steps)
            sys.stderr.write(f"\rrun {record.uuid} {final.state}: {len(steps)} steps, "
                             f"{done} done ")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    return final


class Absence:
    """Says once that the cluster cannot be reached and that this command waits for it,
    then how long it has waited (``note`` is False after ``SERVER_PATIENCE`` seconds)."""

    def __init__(self, run_uuid: str, *, show: bool) -> None:
        self._run_uuid = run_uuid
        self._show = show
        self._since: float | None = None
        self._said = 0.0
        self._newline = "\n" if show else ""  # ends a progress line

    def note(self, error: ApiError) -> bool:
        now = time.monotonic()
        if self._since is None:
            self._since = self._said = now
            print(f"{self._newline}cwl-crunch-runner: {error}; waiting for it up to "
                  f"{SERVER_PATIENCE:g} s (the run {self._run_uuid} goes on there)",
                  file=sys.stderr, flush=True)
        waited = now - self._since
        if waited > SERVER_PATIENCE:
            print(f"{self._newline}cwl-crunch-runner: the cluster did not answer for "
                  f"{waited:.0f} s",
                  file=sys.stderr)
            return False
        if self._show:
            sys.stderr.write(f"\rwaiting for the cluster: {waited:.0f} s of "
                             f"{SERVER_PATIENCE:g} ")
        elif now - self._said >= 30:  # a log, not a terminal: a line every 30 s
            self._said = now
            print(f"cwl-crunch-runner: still waiting for the cluster ({waited:.0f} s)",
                  file=sys.stderr)
        sys.stderr.flush()
        return True

    def over(self) -> None:
        if self._since is not None:
            print(f"{self._newline}cwl-crunch-runner: the cluster answers again after "
                  f"{time.monotonic() - self._since:.0f} s; waiting for the run "
                  f"{self._run_uuid}", file=sys.stderr, flush=True)
            self._since = None


def _report(client: ClusterClient, run: JobRecord, outdir: Path) -> int:
    if not run.complete or run.log_pdh is None:
        print(f"cwl-crunch-runner: run {run.uuid} ended {run.state}"
              f"{': ' + run.failure_reason if run.failure_reason else ''} "
              f"(its log: cwl-crunch jobs logs {run.uuid})", file=sys.stderr)
        return 1 if run.exit_code in (None, 0) else run.exit_code
    if run.exit_code != 0 or run.output_pdh is None:
        print(f"cwl-crunch-runner: run {run.uuid} failed (exit code {run.exit_code}; its "
              f"log: cwl-crunch jobs logs {run.uuid})", file=sys.stderr)
        return run.exit_code or 1
    outputs = json.loads(b"".join(client.read_file(run.log_pdh, "stdout.txt")))
    outdir.mkdir(parents=True, exist_ok=True)
    client.get_collection(run.output_pdh, "", outdir)
    here = outdir.resolve()
    print(json.dumps(relocated(outputs, here.as_uri(), str(here)), indent=4))
    return 0
