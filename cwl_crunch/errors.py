"""Every exception cwl-crunch raises on purpose.

One tree, so callers catch exactly what they can handle::

    CrunchError
    ├── ConfigError                   bad config file, unknown key, bad CWL_CRUNCH_* value
    ├── StoreError
    │   ├── CollectionNotFound        no manifest for that PDH in the store
    │   ├── PathNotFound              the collection has no such file or directory
    │   ├── MissingBlocks             a manifest names blocks the cluster does not hold
    │   │   └── UnprovenBlocks        over HTTP: blocks the token has not proven it may use
    │   ├── InvalidManifest           manifest text that does not parse, or a bad PDH
    │   ├── CorruptBlock              a stored block whose content no longer matches
    │   │   └── CorruptManifest       a stored manifest whose text no longer matches its PDH
    │   ├── OutsideJobDirectory       a job's output or log dir is a symlink out of its job dir
    │   └── PullFailed                no peer gave an intact copy of a manifest or block
    ├── RecordsError
    │   ├── SchemaVersionError        the database was written by an incompatible version
    │   ├── JobNotFound
    │   ├── RuleNotFound              no release rule in force of that UUID
    │   ├── IllegalTransition         a job state change the state machine forbids
    │   └── TokenError                unknown, revoked or malformed API token
    ├── SubmitError                   a job that can never run: bad spec, missing mount, too big
    ├── ResidencyError                resident data asked to leave its cluster (or read into values)
    ├── ApiError                      the cluster's HTTP API refused a request (status, message)
    ├── DispatchError                 the dispatcher could not start or track a job
    ├── ContainerError
    │   ├── EngineUnavailable         no Docker/Podman API to talk to, or it is down
    │   └── ImageError                an image that cannot be found, pulled, built or loaded
    └── JobFailed                     Future.result(): Failed, Cancelled, or exit code != 0

Messages say what was wrong and where (the file, the PDH, the job UUID), so that the
CLI can print ``str(error)`` and nothing else.
"""

from __future__ import annotations

from typing import Protocol


class EndedJob(Protocol):
    """What JobFailed needs of a job record (model.JobRecord is one): errors sit below
    every package, the model included, and import none of them."""

    @property
    def uuid(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def failure_reason(self) -> str | None: ...
    @property
    def complete(self) -> bool: ...


class CrunchError(Exception):
    """Base of every error cwl-crunch raises on purpose."""


class ConfigError(CrunchError):
    """The configuration file or a CWL_CRUNCH_* variable is invalid."""


class StoreError(CrunchError):
    """Base of collection store errors."""


class CollectionNotFound(StoreError):
    """No collection with that portable data hash is in the store."""


class PathNotFound(StoreError):
    """The collection exists but has no such file or directory."""


class MissingBlocks(StoreError):
    """A manifest to store names blocks that are not on the cluster, or (over HTTP)
    that the caller has not proven it may use: put them first."""


class UnprovenBlocks(MissingBlocks):
    """Over HTTP: the manifest names blocks that this token was neither handed signed
    nor uploaded itself (whether the server has them is not told)."""


class InvalidManifest(StoreError):
    """A manifest or a PDH that does not follow the canonical format."""


class CorruptBlock(StoreError):
    """A block's content does not match its hash: the store was damaged."""

    def __init__(self, block: str, collection: str | None, detail: str) -> None:
        where = f" in collection {collection}" if collection else ""
        super().__init__(f"corrupt block {block}{where}: {detail}")
        self.block = block
        self.collection = collection
        self.reason = detail


class OutsideJobDirectory(StoreError):
    """A directory to ingest for a job is, or passes through, a symlink leading out of
    the job's own directory: its files are someone else's and are left alone."""


class CorruptManifest(CorruptBlock):
    """A stored manifest's text does not match its PDH (or cannot be read).

    A kind of CorruptBlock, so that whatever handles a damaged store handles this too;
    its message says manifest. ``block`` and ``collection`` are both the PDH.
    """

    def __init__(self, pdh: str, detail: str) -> None:
        StoreError.__init__(self, f"corrupt manifest of collection {pdh}: {detail}")
        self.block = pdh
        self.collection = pdh
        self.reason = detail


class PullFailed(StoreError):
    """No peer could give an intact copy of a collection's manifest or of one of its
    blocks; the message names the collection, the block and what each peer answered."""


class RecordsError(CrunchError):
    """Base of records database errors."""


class SchemaVersionError(RecordsError):
    """The database schema is newer than this program, or cannot be migrated."""


class JobNotFound(RecordsError):
    """No job record with that UUID."""


class RuleNotFound(RecordsError):
    """No release rule in force with that UUID."""


class IllegalTransition(RecordsError):
    """The job state machine forbids this change."""


class TokenError(RecordsError):
    """The API token is unknown, revoked or malformed."""


class SubmitError(CrunchError):
    """The job spec can never run as given (rejected before a record is made)."""


class ResidencyError(CrunchError):
    """Resident data was asked to leave its cluster, or (by a run whose values travel)
    to be read into values; the message names the collection and its cluster."""


class ApiError(CrunchError):
    """The cluster's HTTP API refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DispatchError(CrunchError):
    """The dispatcher failed to start, track or stop a job."""


class ContainerError(CrunchError):
    """Base of container engine errors."""


class EngineUnavailable(ContainerError):
    """No container engine is configured or found, or it does not answer."""


class ImageError(ContainerError):
    """An image is missing and cannot be pulled, built or loaded."""


class JobFailed(CrunchError):
    """A job ended Failed or Cancelled, or its command exited non-zero."""

    def __init__(self, job: EndedJob) -> None:
        if job.complete:
            what = f"exited with code {job.exit_code}"
        else:
            what = f"ended {job.state}"
            if job.failure_reason:
                what += f": {job.failure_reason}"
        super().__init__(
            f"job {job.uuid} {what} (see its log: cwl-crunch jobs logs {job.uuid})"
        )
        self.job = job
