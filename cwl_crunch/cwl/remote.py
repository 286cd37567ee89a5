"""A process run on another cluster (``RunOnCluster``): one runner job there.

The home runner stores the process (packed into one document) and its input object
(every file a ``keep:`` reference) as a run collection, records the step as a job of
its own (``start_own_job``: it holds no capacity here) and, with that job's token, has
its cluster hand the run to the peer (``federation.links``): the remote runner is that
step job's child. It follows the remote run, has its results pulled home, and ends the
step job with the remote output collection, so the next steps mount it like any other.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import re
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.pack import pack
from cwltool.process import Process
from cwltool.utils import visit_class
from ruamel.yaml import YAML

from cwl_crunch.cwl.containers import image_names
from cwl_crunch.cwl.hints import ARVADOS_NAMESPACE, CLUSTER_HINTS, CRUNCH_NAMESPACE
from cwl_crunch.cwl.job import deliver
from cwl_crunch.cwl.layout import KEEP_PREFIX, keep_paths, move_to_collections, referenced_pdhs
from cwl_crunch.cwl.path_mapper import Uploads
from cwl_crunch.errors import ApiError, CrunchError, IllegalTransition
from cwl_crunch.federation.links import REMOTE_STEP, PeerLinks
from cwl_crunch.model import (
    ClusterClient,
    CollectionMount,
    EndReason,
    JobOutcome,
    JobRecord,
    JobSpec,
    JobState,
)
from cwl_crunch.model.runs import RUN_FOLDER_FILES, RunRequest, relocated
from cwl_crunch.store.manifest_subset import manifest_subset
from cwl_crunch.worker.processes import this_worker

if TYPE_CHECKING:
    from cwl_crunch.cwl.steps import StepRunner

logger = logging.getLogger("cwl_crunch.cwl")

ORIGINAL_VERSION = "http://commonwl.org/cwltool#original_cwlVersion"
FOLLOW_WAIT = 3.0
"""Seconds of one wait for a remote run's end (on the peer's event stream): between
two waits the runner looks whether it was interrupted or the step cancelled here."""
AWAY_PAUSE = 1.0
"""Seconds between tries to reach a peer that does not answer."""
PEER_PATIENCE = 600.0
"""Seconds a home runner goes on trying to reach a peer that stopped answering while
one of its runs is there (the run goes on; the runner resumes following it)."""

JobLinks = Callable[[str, str], tuple[PeerLinks, ClusterClient]]
"""``(token, job uuid)`` -> the peer links and the cluster client of that job's token."""


class Federation:
    """What a runner knows of its cluster's peers."""

    def __init__(self, cluster_id: str, links: PeerLinks, for_job: JobLinks) -> None:
        self.cluster_id = cluster_id
        self.links = links
        self.for_job = for_job


def stored_inputs(job_order: Any, uploads: Uploads) -> dict[str, Any]:
    """A copy of an input object whose local Files and Directories are stored and
    named by ``keep:`` location (only references travel to the peer)."""
    inputs: dict[str, Any] = copy.deepcopy(dict(job_order))

    def store(obj: dict[str, Any]) -> None:
        location = str(obj.get("location") or "")
        if location.startswith("file://"):
            obj["location"] = uploads.keep_location(
                urllib.parse.unquote(urllib.parse.urlsplit(location).path))
            obj.pop("listing", None)  # the stored directory brings its own
        if str(obj.get("location", "")).startswith(KEEP_PREFIX):
            for key in ("path", "dirname"):
                obj.pop(key, None)

    visit_class(inputs, ("File", "Directory"), store)
    # No "$namespaces" (cwltool would hand it to the process as an input: $(inputs)
    # shows it); keep: locations are absolute URIs without it.
    for key in ("id", "$namespaces"):
        inputs.pop(key, None)
    return inputs


def trimmed_inputs(inputs: Any, client: ClusterClient,
                   leave: Callable[[str], bool] = lambda pdh: False) -> Any:
    """The input object with each collection it names replaced by one holding only the
    files and directories it names (same paths; the blocks are this cluster's already):
    a peer pulls what the process can read, not the rest of a large collection. The
    collections ``leave`` says are not here are left as they are."""
    wanted = keep_paths(inputs, lambda pdh: not leave(pdh))
    move_to_collections(inputs, {pdh: _trimmed(client, pdh, paths)
                                 for pdh, paths in wanted.items()})
    return inputs


def _trimmed(client: ClusterClient, pdh: str, paths: set[str]) -> str:
    """A collection of ``pdh``'s entries at or below ``paths`` (``pdh`` itself when that
    is all of it). The manifest's lines are kept as given (signed over HTTP: the proof
    that this caller may name the blocks)."""
    text = client.get_manifest(pdh)
    part = manifest_subset(text, paths)
    if len(part.split()) == len(text.split()):  # every line kept: the whole of it
        return pdh
    return client.put_manifest(part)


def yaml_text(document: Any) -> str:
    """A document as cwltool will read it back: YAML (JSON's superset, and what cwltool
    parses either with), round-trip, so that a number keeps how it was written (the
    command line shows ``1.23e5`` as cwltool read it) and text is Unicode, not escaped
    surrogates."""
    yaml = YAML(typ="rt")
    yaml.allow_unicode = True
    yaml.width = 1 << 16  # no folding of long lines
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def packed_process(process: Process) -> dict[str, Any]:
    """The process as one self-contained document (``#main``), packed by cwltool: the
    process's own document, or, for an inline one (``_:`` id), the document it is
    written in, with the inline process taken out as ``#main`` (its ids made relative
    to it) beside what it refers to."""
    return _with_inherited(_packed(process), process)


def _with_inherited(packed: dict[str, Any], process: Process) -> dict[str, Any]:
    """``#main`` of ``packed`` with the requirements and hints ``process`` inherits from
    the workflows around it (cwltool gives them to it, not to its document), before its
    own so that its own win. SchemaDefRequirement stays behind: its types' ids are the
    outer document's."""
    graph = packed.get("$graph", [packed])
    main = next(entry for entry in graph if entry.get("id") == "#main")
    for field, in_force in (("requirements", process.requirements),
                            ("hints", process.hints)):
        own = process.tool.get(field) or []
        inherited = [copy.deepcopy(item) for item in in_force if item not in own
                     and item.get("class") != "SchemaDefRequirement"]
        # Where it runs is decided: there, it runs there (an expression naming a step
        # input would not even evaluate: the process does not declare it).
        main[field] = [item for item in [*inherited, *(main.get(field) or [])]
                       if _class_of(item) not in CLUSTER_HINTS]
        if not main[field]:
            del main[field]
    return packed


def _class_of(item: Any) -> str:
    """A requirement's class as a full URI (a packed document may keep a prefix)."""
    name = str(item.get("class", "")) if isinstance(item, dict) else ""
    for prefix, namespace in (("arv:", ARVADOS_NAMESPACE), ("crunch:", CRUNCH_NAMESPACE)):
        if name.startswith(prefix):
            return namespace + name[len(prefix):]
    return name


def _packed(process: Process) -> dict[str, Any]:
    tool_id = str(process.tool["id"])
    context = LoadingContext()
    context.loader = process.doc_loader
    if not tool_id.startswith("_:"):
        return dict(pack(context, tool_id))
    prefix = _id_prefix(process.tool)  # file:///.../wf.cwl#step/run
    document_uri, _, fragment = prefix.partition("#")
    packed = pack(context, document_uri)
    graph: list[dict[str, Any]] = list(cast(list[dict[str, Any]], packed["$graph"])) \
        if "$graph" in packed else [dict(packed)]
    inline_prefix = f"#main/{fragment}"
    inline = _find_process(graph, inline_prefix)
    if inline is None:
        raise WorkflowException(f"RunOnCluster: cannot find the inline process {prefix} in "
                                f"the packed {document_uri}")
    main = _renamed(copy.deepcopy(inline), inline_prefix, "#main")
    main["id"] = "#main"
    others = [entry for entry in graph if entry.get("id") != "#main"]
    result = {key: value for key, value in packed.items() if key != "$graph"}
    return {**result, "$graph": [*others, main], "cwlVersion": packed.get("cwlVersion")
            or process.metadata.get(ORIGINAL_VERSION) or "v1.2"}


def _find_process(node: Any, prefix: str) -> dict[str, Any] | None:
    """The process in a packed document whose parameters' ids start with ``prefix/``."""
    if isinstance(node, list):
        for item in node:
            if (found := _find_process(item, prefix)) is not None:
                return found
        return None
    if not isinstance(node, dict):
        return None
    parameters = [*(node.get("inputs") or []), *(node.get("outputs") or [])]
    if "class" in node and parameters and all(
            isinstance(p, dict) and str(p.get("id", "")).startswith(prefix + "/")
            for p in parameters):
        return node
    for value in node.values():
        if (found := _find_process(value, prefix)) is not None:
            return found
    return None


def _renamed(node: Any, old: str, new: str) -> Any:
    """``node`` with every string that is ``old`` or starts with ``old/`` renamed."""
    if isinstance(node, str):
        if node == old:
            return new
        return new + node[len(old):] if node.startswith(old + "/") else node
    if isinstance(node, list):
        for index, item in enumerate(node):
            node[index] = _renamed(item, old, new)
        return node
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _renamed(node[key], old, new)
    return node


def _id_prefix(tool: Any) -> str:
    """What an inline process's parameter ids start with (``...#step/run``)."""
    for field in ("inputs", "outputs"):
        for parameter in tool.get(field) or []:
            return str(parameter["id"]).rsplit("/", 1)[0]
    raise WorkflowException("RunOnCluster: an inline process without inputs or outputs "
                            "cannot be sent to another cluster")


class RemoteRun:
    """A job for cwltool's executor: runs ``process`` on peer ``peer_id``."""

    def __init__(self, steps: StepRunner, process: Process, job_order: Any, peer_id: str,
                 name: str, output_callback: Callable[[Any, str], None]) -> None:
        self._steps = steps
        self._process = process
        self._job_order = job_order
        self.peer_id = peer_id
        self.name = name
        self._output_callback = output_callback
        self.outdir = None  # cwltool's executor looks for one

    def run(self, runtimeContext: RuntimeContext,
            tmpdir_lock: threading.Lock | None = None) -> None:
        outputs: Any = {}
        status = "permanentFail"
        try:
            outputs = self._steps.run_remote(self.name, packed_process(self._process),
                                             self._job_order, self.peer_id)
            status = "success"
        except (WorkflowException, CrunchError) as error:
            logger.error("[step %s] on cluster %s: %s", self.name, self.peer_id, error)
        deliver(runtimeContext, self._output_callback, outputs, status)


def run_remote(steps: StepRunner, federation: Federation, name: str,
               packed: dict[str, Any], job_order: Any, peer_id: str) -> Any:
    """Run one process on ``peer_id`` below a step job of this run; its outputs."""
    # Outputs of earlier steps on that peer stay there; those of other peers come home
    # (the parts read) and are sent on from here.
    job_order = steps.localized(f"step {name}", job_order, staying_on=peer_id)
    def on_peer(pdh: str) -> str | None:
        """The job on ``peer_id`` that made ``pdh`` (None: it is here, or a part
        pulled home that is the whole of another peer's collection)."""
        origin = steps.remote.origin(pdh)
        return origin.job_uuid if origin is not None and origin.peer_id == peer_id else None

    placement = steps.placement()

    def kept_there(pdh: str) -> bool:
        """Resident on the peer (so not here): named, never sent."""
        return placement is not None and placement.resident_on(pdh) == peer_id

    inputs = trimmed_inputs(stored_inputs(job_order, Uploads(lambda: steps.client)),
                            steps.client,
                            leave=lambda pdh: on_peer(pdh) is not None or kept_there(pdh))
    pdhs = sorted(referenced_pdhs(inputs))
    there = {pdh: job for pdh in pdhs if (job := on_peer(pdh)) is not None}
    held_there = {pdh for pdh in pdhs if pdh not in there and kept_there(pdh)}
    # The cluster offers the peer the images it has of these names, by digest.
    images = dict.fromkeys(image_names(packed), "") if steps.containers is not None else {}
    with tempfile.TemporaryDirectory(prefix="cwl-crunch-remote-") as scratch:
        folder = Path(scratch)
        workflow, inputs_file = RUN_FOLDER_FILES
        (folder / workflow).write_text(yaml_text(packed))
        (folder / inputs_file).write_text(yaml_text(inputs))
        run_pdh = steps.client.put_paths([folder / workflow, folder / inputs_file])
    mounts = {"in": CollectionMount(run_pdh),
              **{f"inputs/{index}": CollectionMount(pdh) for index, pdh in enumerate(pdhs)
                 if pdh not in there and pdh not in held_there}}
    claim = steps.client.start_own_job(JobSpec(
        (*REMOTE_STEP, peer_id, name), name=name, mounts=mounts,
        cores=0.01, ram=1 << 20, reuse=False), this_worker())
    links, step_client = federation.for_job(claim.token, claim.job.uuid)
    try:
        return _follow_and_collect(steps, links, step_client, claim.job.uuid, name, peer_id,
                                   RunRequest(run_pdh, tuple(pdhs), name, steps.reuse,
                                              steps.containers is not None, there, images))
    finally:
        if step_client is not steps.client:
            step_client.close()


def _follow_and_collect(steps: StepRunner, links: PeerLinks, step_client: ClusterClient,
                        step_uuid: str, name: str, peer_id: str, request: RunRequest) -> Any:
    outcome = JobOutcome(JobState.FAILED, None, None, None, "not handed to the peer",
                         EndReason.ERROR)
    try:
        remote = links.hand_run(peer_id, request)
        logger.info("[step %s] runs on cluster %s as %s", name, peer_id, remote.uuid)
        steps.progress.change(queued=1)
        final = _followed(steps, links, peer_id, remote,
                          lambda: _cancelled(step_client, step_uuid))
        steps.progress.change(queued=-1, done=1 if final.succeeded else 0,
                              failed=0 if final.succeeded else 1)
        if not final.succeeded or final.log_pdh is None or final.output_pdh is None:
            reason = final.failure_reason or f"exit code {final.exit_code}"
            last_error = _last_error(steps, peer_id, final)
            if last_error:
                reason += f": {last_error}"
            outcome = JobOutcome(JobState.FAILED, final.exit_code, None, None,
                                 f"on cluster {peer_id}: {final.state}: {reason}",
                                 EndReason.ERROR)
            raise WorkflowException(f"run {final.uuid} on cluster {peer_id} ended "
                                    f"{final.state} ({reason})")
        # The outputs stay on the peer until read here (see RemoteOutputs): of the log,
        # only the output object comes home now.
        for pdh in (final.output_pdh, final.log_pdh):
            steps.remote.note(pdh, peer_id, final.uuid)
        said_in = steps.remote.part(final.log_pdh, {"stdout.txt"})
        said = b"".join(steps.client.read_file(said_in, "stdout.txt"))
        outputs = relocated(json.loads(said), f"{KEEP_PREFIX}{final.output_pdh}", None)
        outcome = JobOutcome(JobState.COMPLETE, 0, None, None, None, EndReason.EXIT)
        return outputs
    finally:
        # Cancelled here meanwhile: its record says so already.
        with contextlib.suppress(IllegalTransition):
            step_client.finish_job(step_uuid, outcome)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _last_error(steps: StepRunner, peer_id: str, final: JobRecord) -> str:
    """The last error line the remote runner wrote (its stderr), or ""; what the peer
    refuses to give (a resident log) is said as the peer said it."""
    if final.log_pdh is None:
        return ""
    try:
        steps.remote.note(final.log_pdh, peer_id, final.uuid)
        part = steps.remote.part(final.log_pdh, {"stderr.txt"})
        text = b"".join(steps.client.read_file(part, "stderr.txt")).decode(errors="replace")
    except CrunchError as error:
        return f"(its log cannot be read here: {error})"
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    # The last lines that are not cwltool's INFO or WARNING ones: the error, as said.
    said: list[str] = []
    for line in reversed(lines):
        if line.startswith(("INFO ", "WARNING ", "DEBUG ")):
            if said:
                break
            continue
        said.insert(0, line)
        if len(said) == 4:
            break
    return " ".join(said or lines[-1:])[:2000]


def _cancelled(step_client: ClusterClient, step_uuid: str) -> bool:
    """Whether the step's job was cancelled on this cluster (its run, or it alone)."""
    record = step_client.get_job(step_uuid)
    return record.cancel_requested or record.state == JobState.CANCELLED


def _followed(steps: StepRunner, links: PeerLinks, peer_id: str, remote: JobRecord,
              cancelled_here: Callable[[], bool]) -> JobRecord:
    """The remote run's final record; cancelled there when this run is interrupted or
    the step's job is cancelled here; a peer that stops answering is waited for up to
    ``PEER_PATIENCE`` seconds."""
    away_since, record, cancelled = None, remote, False
    while not record.finished:
        if not cancelled and (steps.interrupted.is_set() or cancelled_here()):
            links.cancel(peer_id, record.uuid)
            cancelled = True
        try:
            record = links.wait_remote(peer_id, record.uuid, FOLLOW_WAIT)
        except ApiError as error:
            if error.status is not None and error.status != 502:
                raise
            away_since = away_since or time.monotonic()
            if time.monotonic() - away_since > PEER_PATIENCE:
                raise WorkflowException(f"cluster {peer_id} did not answer for "
                                        f"{PEER_PATIENCE:g} s: {error}") from None
            logger.warning("cluster %s does not answer (%s); waiting for it", peer_id,
                           error)
            time.sleep(AWAY_PAUSE)
            continue
        away_since = None
    return record
