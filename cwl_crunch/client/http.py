"""The ClusterClient of a ``cwl-crunch server``: the same interface over its HTTP API.

Collections move block by block: the client hashes what it puts, asks which blocks the
server lacks and sends only those; it verifies every block it reads against its hash
(the server did too, before sending). The server signs the locators it hands out for
this client's token, and takes a block in a manifest only when it is named signed or
was uploaded by this token: manifests read are checked against their PDH with the
signatures stripped, and the signed forms kept to name those blocks again.

Waiting follows the server-sent event stream, resuming after the last event seen when
the connection drops.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from cwl_crunch.client.http_cache import ContentCache
from cwl_crunch.client.http_events import EventFollower
from cwl_crunch.client.http_transport import JOB_RECONNECT, Transport
from cwl_crunch.config import Config
from cwl_crunch.errors import (
    ApiError,
    CorruptBlock,
    CrunchError,
    InvalidManifest,
    PathNotFound,
)
from cwl_crunch.model import (
    JOB_PAGE_LIMIT,
    Claim,
    ClusterClient,
    CollectionEntry,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    NodeSize,
    WorkerInfo,
)
from cwl_crunch.model.codec import (
    claim_from_dict,
    event_from_dict,
    outcome_to_dict,
    record_from_dict,
    spec_to_dict,
    worker_to_dict,
)
from cwl_crunch.model.residency import CollectionResidency, residency_from_dict
from cwl_crunch.model.validation import check_spec
from cwl_crunch.store import Manifest, locator_for
from cwl_crunch.store.listing import checked_path, list_entries
from cwl_crunch.store.locators import (
    manifest_locators,
    replace_locators,
    split_signature,
    strip_signatures,
)
from cwl_crunch.store.upload_plan import plan_upload

_UUIDS_PER_REQUEST = 200
"""Job UUIDs per ``GET /jobs?uuid=...``: keeps URLs well under servers' limits."""
_UNSET = object()
_PATIENCE = 0.25
"""Seconds wait() gives the event follower to see a job before reading its record."""


class HttpClient(ClusterClient):
    def __init__(self, config: Config, *, reconnect_for: float = 0.0,
                 signer: Callable[[bytes], bytes] | None = None) -> None:
        """``reconnect_for``: seconds to keep trying while the server refuses
        connections (a worker outliving a restart of its server). ``signer``: signs a
        manifest's locators for this client's token with the cluster's key, for a worker
        that wrote their blocks into a store directory it shares with the server (a
        SLURM job's worker: see cli.worker); put_manifest then names them so."""
        self.config = config
        self._signer = signer
        self._transport = Transport(config.api_url, config.api_token,
                                    reconnect_for=reconnect_for)
        self.cluster_id = str(self._transport.json("GET", "/cluster")["cluster_id"])
        self._caller: Any = _UNSET
        self._cache = ContentCache()
        self._events = EventFollower(self._transport, self.last_event_id,
                                     keep_output=self._keep_carried_output)

    # Jobs -------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, parent_uuid: str | None = None) -> JobRecord:
        check_spec(spec)  # what can be refused here needs no round trip (NaN is not JSON)
        params = {} if parent_uuid is None else {"parent_uuid": parent_uuid}
        return record_from_dict(self._transport.json("POST", "/jobs", json=spec_to_dict(spec),
                                                     params=params))

    def post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` to an API path of the cluster (under ``/api/v1``), the JSON
        answer back: for calls outside the ClusterClient interface (federation)."""
        return self._transport.json("POST", path, json=body)

    def get_json(self, path: str) -> Any:
        """GET an API path of the cluster (under ``/api/v1``): its JSON answer."""
        return self._transport.json("GET", path)

    def download(self, path: str, into: BinaryIO) -> int:
        """GET an API path of the cluster into a file as it arrives: its size."""
        return self._transport.download(path, into)

    def start_own_job(self, spec: JobSpec, worker: WorkerInfo) -> Claim:
        check_spec(spec)
        body = {"spec": spec_to_dict(spec), "worker": worker_to_dict(worker)}
        return claim_from_dict(self._transport.json("POST", "/jobs/own", json=body))

    def caller_job(self) -> str | None:
        if self._caller is _UNSET:
            self._caller = self._transport.json("GET", "/caller")["job_uuid"]
            if self._caller is not None:  # a job's program: it must outlive a restart
                self._transport.keep_trying(JOB_RECONNECT)
        job: str | None = self._caller
        return job

    def get_job(self, uuid: str) -> JobRecord:
        return record_from_dict(self._transport.json("GET", f"/jobs/{uuid}"))

    def get_jobs(self, uuids: Sequence[str]) -> list[JobRecord]:
        found: list[JobRecord] = []
        for start in range(0, len(uuids), _UUIDS_PER_REQUEST):
            batch = list(uuids[start:start + _UUIDS_PER_REQUEST])
            found += [record_from_dict(data) for data in
                      self._transport.json("GET", "/jobs", params={"uuid": batch})]
        return found

    def list_jobs(self, job_filter: JobFilter) -> list[JobRecord]:
        if job_filter.limit > JOB_PAGE_LIMIT:  # what the server answers at most at once
            return list(self.iter_jobs(job_filter))
        params: dict[str, Any] = {"limit": job_filter.limit,
                                  "top_level": job_filter.top_level}
        if job_filter.parent_uuid is not None:
            params["parent"] = job_filter.parent_uuid
        if job_filter.after is not None:
            params["after"] = job_filter.after
        if job_filter.states:
            params["state"] = sorted(job_filter.states)
        return [record_from_dict(data)
                for data in self._transport.json("GET", "/jobs", params=params)]

    def largest_node(self) -> NodeSize:
        body = self._transport.json("GET", "/nodes/largest")
        return NodeSize(cores=float(body["cores"]), ram=int(body["ram"]))

    def cancel(self, uuid: str) -> JobRecord:
        return record_from_dict(self._transport.json("POST", f"/jobs/{uuid}/cancel"))

    def events(self, after_id: int, timeout: float) -> list[JobEvent]:
        timeout = max(0.0, min(timeout, 30.0))
        body = self._transport.json("GET", "/events", params={"after": after_id,
                                                               "timeout": timeout},
                                    timeout=timeout + 30)
        return [event_from_dict(data) for data in body["events"]]

    def last_event_id(self) -> int:
        return int(self._transport.json("GET", "/events/last")["last"])

    def wait(self, uuids: Sequence[str], timeout: float | None = None) -> list[JobRecord]:
        """Block until every job is finished (or timeout), following the event stream."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._events.start()  # before reading the records: no end can slip between
        wanted = set(uuids)
        # A job the follower has an event of needs no first read: its end will come by.
        unseen = self._events.unseen(wanted, _PATIENCE)
        records = {r.uuid: r for r in self.get_jobs(sorted(unseen))}
        pending = {uuid for uuid in wanted if uuid not in records or not records[uuid].finished}
        while pending and (deadline is None or time.monotonic() < deadline):
            ended = self._events.wait_any(pending, deadline)
            if self._events.error is not None:
                raise self._events.error
            if self._events.stopped:
                raise ApiError("the client was closed while waiting for jobs")
            carried = {uuid: self._events.final_record(uuid) for uuid in ended}
            records.update((uuid, r) for uuid, r in carried.items() if r is not None)
            unknown = sorted(uuid for uuid, r in carried.items() if r is None)
            records.update((record.uuid, record) for record in self.get_jobs(unknown))
            pending -= ended
        unread = sorted(wanted - set(records))  # still running at the timeout
        records.update((record.uuid, record) for record in self.get_jobs(unread))
        return [records[uuid] for uuid in uuids]

    def follow_events(self) -> None:
        """Begin following the event stream (idempotent), for ``seen_end``."""
        self._events.start()

    def seen_end(self, uuid: str) -> JobRecord | bool:
        """Without waiting: job ``uuid``'s final record if the stream showed it ending
        since ``follow_events`` (True if it ended but its record did not come along),
        False if not. For a caller that waits without holding a thread (the server's
        proxy of a peer's job)."""
        if not self._events.has_ended(uuid):
            return False
        return self._events.final_record(uuid) or True

    # Collections --------------------------------------------------------------------
    def put_paths(self, paths: Sequence[Path]) -> str:
        plan = plan_upload(paths)
        wanted = sorted(plan.sources)
        signed: dict[str, str] = {}
        if wanted:
            # Blocks this client was handed signed are named so: the server has them
            # and this token may use them, so they need no upload.
            answer = self._transport.json("POST", "/blocks/missing", json={
                "locators": [self._cache.signed(locator) for locator in wanted]})
            signed.update(answer["signed"])
            for locator in answer["missing"]:
                # Streamed from the file: the block is never held whole on this side.
                signed[locator] = self._transport.json(
                    "PUT", f"/blocks/{locator}", content=plan.sources[locator].chunks(),
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Length": locator.split("+")[1]})["locator"]
        self._cache.keep_signed(signed.values())
        return self.put_manifest(replace_locators(
            plan.manifest.text, lambda locator: signed.get(locator, locator)))

    def missing_blocks(self, locators: Sequence[str]) -> list[str]:
        wanted = list(dict.fromkeys(locators))
        if not wanted:
            return []
        answer = self._transport.json("POST", "/blocks/missing", json={
            "locators": [self._cache.signed(locator) for locator in wanted]})
        self._cache.keep_signed(answer["signed"].values())
        return list(answer["missing"])

    def put_block(self, data: bytes) -> str:
        locator = locator_for(data)
        signed: str = self._transport.json(
            "PUT", f"/blocks/{locator}", content=data,
            headers={"Content-Type": "application/octet-stream"})["locator"]
        self._cache.keep_signed([signed])
        return signed

    def get_block(self, pdh: str, locator: str) -> bytes:
        bare = split_signature(locator)[0]
        if not any(bare in file.locators for file in self._manifest(pdh).files()):
            raise PathNotFound(f"collection {pdh} has no block {bare}")  # as embedded
        return next(self._blocks(pdh, [bare]))

    def get_manifest(self, pdh: str) -> bytes:
        text: bytes = self._transport.call("GET", f"/collections/{pdh}/manifest").content
        _checked_manifest(pdh, text)
        self._cache.keep_signed(manifest_locators(text))
        return text

    def put_manifest(self, text: bytes) -> str:
        """Record a manifest whose blocks the server already holds, each named signed
        for this client's token or uploaded with it (a worker that wrote them into a
        store directory shared with the server signs them itself); returns its PDH,
        that of the text with the signatures stripped."""
        text = replace_locators(text, self._cache.signed)
        if self._signer is not None:
            text = self._signer(text)
        body = self._transport.json("POST", "/collections", content=text,
                                    headers={"Content-Type": "text/plain"})
        pdh: str = body["pdh"]
        return pdh

    def list_collection(self, pdh: str, path: str = "") -> list[CollectionEntry]:
        # From the (checked, cached) manifest: the listing the server would send, and
        # the manifest is needed anyway to read the files found.
        return list_entries(self._manifest(pdh), path)

    def _manifest(self, pdh: str) -> Manifest:
        cached = self._cache.manifest(pdh)
        if cached is not None:
            return cached
        text = self._transport.call("GET", f"/collections/{pdh}/manifest").content
        manifest = _checked_manifest(pdh, text)
        self._cache.keep_manifest(pdh, manifest)
        self._cache.keep_signed(manifest_locators(text))
        return manifest

    def _keep_carried_output(self, pdh: str, carried: Mapping[str, Any]) -> None:
        """Keep the small output an event carried, checked as if read; anything that
        does not check out is left for a reader to ask for (and be told about)."""
        try:
            text = str(carried["manifest"]).encode()
            manifest = _checked_manifest(pdh, text)
            blocks = {locator: base64.b64decode(encoded, validate=True)
                      for locator, encoded in dict(carried["blocks"]).items()}
        except (CrunchError, KeyError, TypeError, ValueError):
            return
        self._cache.keep_manifest(pdh, manifest)
        self._cache.keep_signed(manifest_locators(text))
        for locator, data in blocks.items():
            if locator_for(data) == locator:
                self._cache.keep_block(locator, data)

    def read_file(self, pdh: str, path: str) -> Iterator[bytes]:
        manifest = self._manifest(pdh)
        path = checked_path(path, pdh)
        file = manifest.file(path)
        if file is None:  # as the store says it (core.embedded)
            what = "a directory" if manifest.is_dir(path) else "not there"
            raise PathNotFound(f"cannot read {path!r} of collection {pdh}: it is {what}")
        return self._blocks(pdh, file.locators)

    def _blocks(self, pdh: str, locators: Sequence[str]) -> Iterator[bytes]:
        for locator in locators:
            kept = self._cache.block(locator)
            if kept is not None:
                yield kept
                continue
            data = self._transport.read_body(f"/collections/{pdh}/blocks/{locator}")
            if locator_for(data) != locator:
                raise CorruptBlock(locator, pdh, "the bytes received do not match its hash")
            received = bytes(data)
            del data
            self._cache.keep_block(locator, received)
            yield received

    def get_collection(self, pdh: str, path: str, dest: Path) -> None:
        manifest = self._manifest(pdh)
        path = path.strip("/")
        single = manifest.file(path)
        if single is not None:
            target = dest / path.rsplit("/", 1)[-1] if dest.is_dir() else dest
            self._write(pdh, single.locators, target)
            return
        entries = self.list_collection(pdh, path)  # the server's errors for a bad path
        root = dest / path.rsplit("/", 1)[-1] if dest.is_dir() and path else dest
        root.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            relative = entry.path[len(path) + 1:] if path else entry.path
            target = root / relative
            if entry.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
                continue
            file = manifest.file(entry.path)
            assert file is not None
            self._write(pdh, file.locators, target, executable=file.executable)

    def _write(self, pdh: str, locators: Sequence[str], target: Path,
               executable: bool = False) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for data in self._blocks(pdh, locators):
                out.write(data)
        if executable:
            target.chmod(0o755)

    def residency(self, pdh: str) -> CollectionResidency | None:
        return residency_from_dict(self._transport.json(
            "GET", f"/collections/{pdh}/residency")["residency"])

    def make_resident(self, pdh: str, reason: str = "") -> CollectionResidency:
        found = residency_from_dict(self._transport.json(
            "POST", f"/collections/{pdh}/resident", json={"reason": reason})["residency"])
        assert found is not None
        return found

    def has_collection(self, pdh: str) -> bool:
        response = self._transport.call("GET", f"/collections/{pdh}", ok=(200, 404))
        return response.status_code == 200

    # Worker side ----------------------------------------------------------------------
    def claim_job(self, uuid: str, worker: WorkerInfo) -> Claim | None:
        response = self._transport.call("POST", f"/jobs/{uuid}/claim", ok=(200, 204),
                                        json=worker_to_dict(worker))
        return None if response.status_code == 204 else claim_from_dict(response.json())

    def set_job_process(self, uuid: str, pgid: int, pgid_start: int) -> bool:
        body = self._transport.json("POST", f"/jobs/{uuid}/process",
                                    json={"pgid": pgid, "pgid_start": pgid_start})
        return bool(body["cancel_requested"])

    def finish_job(self, uuid: str, outcome: JobOutcome) -> JobRecord:
        return record_from_dict(self._transport.json("POST", f"/jobs/{uuid}/finish",
                                                     json=outcome_to_dict(outcome)))

    def close(self) -> None:
        self._events.stop()
        self._transport.close()


def _checked_manifest(pdh: str, text: bytes) -> Manifest:
    """The manifest ``text`` (its locators signed or not) if, over bare locators, it is
    the one ``pdh`` names; InvalidManifest otherwise."""
    manifest = Manifest.from_text(strip_signatures(text))
    if manifest.pdh != pdh:
        raise InvalidManifest(f"the cluster sent a manifest for {pdh} that hashes to "
                              f"{manifest.pdh}")
    return manifest
