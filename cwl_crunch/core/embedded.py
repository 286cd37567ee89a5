"""The embedded client: a ClusterClient over a ClusterCore in this process.

What a caller does is done as its token's job (its submissions become that job's
children) or as a person. Many clients may share one core: the server serves each
request through the client of the request's caller (``EmbeddedClient.over``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from cwl_crunch.config import Config
from cwl_crunch.core.cluster import ClusterCore, JobApiFactory
from cwl_crunch.errors import PathNotFound
from cwl_crunch.model import (
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
from cwl_crunch.model.residency import CollectionResidency
from cwl_crunch.store.locators import split_signature, strip_signatures


class EmbeddedClient(ClusterClient):
    def __init__(self, config: Config, *, job_api: str | JobApiFactory | None = None) -> None:
        """Open the cluster at ``config``'s home in this process (its own core, closed
        with this client); ``job_api``: see ClusterCore."""
        self.core = ClusterCore(config, job_api=job_api)
        self.cluster_id = self.core.cluster_id
        self._caller = self.core.token_job(config.api_token)
        self._owns_core = True

    @classmethod
    def over(cls, core: ClusterCore, caller: str | None = None) -> EmbeddedClient:
        """A client of ``core`` acting as job ``caller`` (None: a person). Shares the
        core; closing the client closes nothing."""
        client = cls.__new__(cls)
        client.core, client.cluster_id = core, core.cluster_id
        client._caller, client._owns_core = caller, False
        return client

    @property
    def config(self) -> Config:
        return self.core.config

    # Jobs -------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, parent_uuid: str | None = None) -> JobRecord:
        return self.core.submit(spec, parent_uuid=self.core.parent_for(self._caller,
                                                                       parent_uuid))

    def start_own_job(self, spec: JobSpec, worker: WorkerInfo) -> Claim:
        return self.core.start_own_job(spec, worker, parent_uuid=self._caller)

    def caller_job(self) -> str | None:
        return self._caller

    def get_job(self, uuid: str) -> JobRecord:
        return self.core.get_job(uuid)

    def get_jobs(self, uuids: Sequence[str]) -> list[JobRecord]:
        return self.core.get_jobs(uuids)

    def list_jobs(self, job_filter: JobFilter) -> list[JobRecord]:
        return self.core.list_jobs(job_filter)

    def largest_node(self) -> NodeSize:
        return self.core.largest_node()

    def cancel(self, uuid: str) -> JobRecord:
        return self.core.cancel(uuid)

    def residency(self, pdh: str) -> CollectionResidency | None:
        return self.core.residency(pdh)

    def make_resident(self, pdh: str, reason: str = "") -> CollectionResidency:
        return self.core.make_resident(pdh, reason)

    def events(self, after_id: int, timeout: float) -> list[JobEvent]:
        return self.core.events(after_id, timeout)

    def last_event_id(self) -> int:
        return self.core.last_event_id()

    def wait(self, uuids: Sequence[str], timeout: float | None = None) -> list[JobRecord]:
        self.core.start_dispatching()
        return super().wait(uuids, timeout)

    # Collections --------------------------------------------------------------------
    def put_paths(self, paths: Sequence[Path]) -> str:
        pdh = self.core.put_paths(paths)
        if self._caller is None:
            self.core.stored_by_person(pdh)
        return pdh

    def list_collection(self, pdh: str, path: str = "") -> list[CollectionEntry]:
        return self.core.list_collection(pdh, path)

    def read_file(self, pdh: str, path: str) -> Iterator[bytes]:
        return self.core.read_file(pdh, path)

    def get_collection(self, pdh: str, path: str, dest: Path) -> None:
        self.core.get_collection(pdh, path, dest)

    def has_collection(self, pdh: str) -> bool:
        return self.core.has_collection(pdh)

    # Blocks -------------------------------------------------------------------------
    def missing_blocks(self, locators: Sequence[str]) -> list[str]:
        bare = list(dict.fromkeys(split_signature(locator)[0] for locator in locators))
        return self.core.missing_blocks(bare)

    def put_block(self, data: bytes) -> str:
        return self.core.put_block(data)

    def get_block(self, pdh: str, locator: str) -> bytes:
        bare = split_signature(locator)[0]
        if not any(bare in file.locators for file in self.core.manifest(pdh).files()):
            raise PathNotFound(f"collection {pdh} has no block {bare}")
        return self.core.read_block(bare, pdh)

    def get_manifest(self, pdh: str) -> bytes:
        return self.core.manifest_text(pdh)

    def put_manifest(self, text: bytes) -> str:
        return self.core.put_manifest(strip_signatures(text))

    # Worker side ----------------------------------------------------------------------
    def claim_job(self, uuid: str, worker: WorkerInfo) -> Claim | None:
        return self.core.claim_job(uuid, worker)

    def set_job_process(self, uuid: str, pgid: int, pgid_start: int) -> bool:
        return self.core.set_job_process(uuid, pgid, pgid_start)

    def finish_job(self, uuid: str, outcome: JobOutcome) -> JobRecord:
        return self.core.finish_job(uuid, outcome)

    def close(self) -> None:
        if self._owns_core:
            self._owns_core = False
            self.core.close()
