"""The Python SDK: connect to a cluster, submit commands as jobs, wait on futures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cwl_crunch.client import ClusterClient, JobRecord, JobSpec, Mount, open_client
from cwl_crunch.config import load_config
from cwl_crunch.errors import JobFailed
from cwl_crunch.model.residency import CollectionResidency
from cwl_crunch.server.job_api import JobApi


class Future:
    """A submitted job. ``result()`` waits for it and raises JobFailed unless it succeeded."""

    def __init__(self, client: ClusterClient, record: JobRecord) -> None:
        self._client = client
        self._record = record

    @property
    def uuid(self) -> str:
        return self._record.uuid

    def record(self) -> JobRecord:
        """The job's record now (without waiting)."""
        if not self._record.finished:
            self._record = self._client.get_job(self.uuid)
        return self._record

    def done(self) -> bool:
        return self.record().finished

    def result(self, timeout: float | None = None) -> JobRecord:
        if not self._record.finished:
            self._record = self._client.wait([self.uuid], timeout)[0]
        if not self._record.finished:
            raise TimeoutError(f"job {self.uuid} still {self._record.state} after {timeout} s")
        if not self._record.succeeded:
            raise JobFailed(self._record)
        return self._record

    @property
    def output(self) -> str:
        """PDH of the output collection (waits for the job)."""
        pdh = self.result().output_pdh
        assert pdh is not None
        return pdh

    def cancel(self) -> JobRecord:
        self._record = self._client.cancel(self.uuid)
        return self._record

    def __repr__(self) -> str:
        return f"<Future {self.uuid} {self._record.state}>"


class Cluster:
    """A connection to one cluster, for programs (see ``connect``)."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client

    def submit(
        self,
        command: Sequence[str],
        *,
        mounts: Mapping[str, Mount] | None = None,
        cores: float = 1.0,
        ram: int = 256 << 20,
        env: Mapping[str, str] | None = None,
        reuse: bool = True,
        **spec_fields: Any,
    ) -> Future:
        """Submit ``command`` as a job; other JobSpec fields (name, time_limit...) by name."""
        spec = JobSpec(command=tuple(command), mounts=dict(mounts or {}), cores=cores,
                       ram=ram, environment=dict(env or {}), reuse=reuse, **spec_fields)
        return Future(self.client, self.client.submit(spec))

    def put(self, *paths: str | Path, resident: bool = False) -> str:
        """Store files and directories as one collection; returns its PDH.
        ``resident``: it must stay on this cluster (see the README, "Data residency")."""
        pdh = self.client.put_paths([Path(path) for path in paths])
        if resident:
            self.client.make_resident(pdh, "stored resident")
        return pdh

    def residency(self, pdh: str) -> CollectionResidency | None:
        """Whether collection ``pdh`` stays on this cluster (None: it may travel)."""
        return self.client.residency(pdh)

    def read_text(self, pdh: str, path: str) -> str:
        return b"".join(self.client.read_file(pdh, path)).decode()

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(**config_overrides: Any) -> Cluster:
    """The cluster this program should use.

    Configured by the config file and CWL_CRUNCH_* variables. Inside a job, those
    variables (set by the worker) are the API of the cluster running it and the job's
    token, so jobs submitted from there become children of that job with no change to
    the code. An embedded cluster serves that API to the jobs this program runs.
    """
    return Cluster(open_client(load_config(**config_overrides), job_api=JobApi))


def wait_all(futures: Iterable[Future], timeout: float | None = None) -> list[JobRecord]:
    """Wait for every future (whatever its outcome); returns their final records."""
    futures = list(futures)
    by_client: dict[int, tuple[ClusterClient, list[Future]]] = {}
    for future in futures:
        by_client.setdefault(id(future._client), (future._client, []))[1].append(future)
    records: dict[str, JobRecord] = {}
    for client, group in by_client.values():
        for record in client.wait([f.uuid for f in group], timeout):
            records[record.uuid] = record
    for future in futures:
        future._record = records[future.uuid]
    return [records[f.uuid] for f in futures]
