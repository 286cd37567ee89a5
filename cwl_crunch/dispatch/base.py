"""What every dispatcher does: accept jobs that can ever run, start them, track them."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from cwl_crunch.errors import ConfigError
from cwl_crunch.model import JobSpec, NodeSize

if TYPE_CHECKING:
    from cwl_crunch.config import Config
    from cwl_crunch.records.database import Database
    from cwl_crunch.store import CollectionStore
    from cwl_crunch.worker.job_worker import JobWorker


@dataclasses.dataclass(frozen=True)
class ClusterParts:
    """What a dispatcher works with: the cluster's config, records and store (the
    core owns them and hands them down), and how to tell the core's waiters that
    records changed."""

    config: Config
    database: Database
    store: CollectionStore
    notify_changed: Callable[[], None]


class Dispatcher(abc.ABC):
    """Starts queued jobs somewhere and notices when they end or their worker dies."""

    name: ClassVar[str]
    jobs_ended: int = 0
    """Jobs this dispatcher ran to their end (for progress displays)."""

    @classmethod
    def create(cls, cluster: ClusterParts, *, worker: JobWorker | None,
               api_url: str | None) -> Dispatcher:
        """This dispatcher over ``cluster`` (the core builds every dispatcher so, by
        name from the registry): ``worker`` runs jobs in this process, where this
        dispatcher does; ``api_url``: the ``cwl-crunch server`` whose jobs these are,
        where workers elsewhere report (ConfigError for a dispatcher that needs one).
        Dispatchers made of others (split, child) are not in the registry."""
        raise ConfigError(f"the {cls.name} dispatcher is made of others, not by name")

    @abc.abstractmethod
    def check_fits(self, spec: JobSpec) -> None:
        """Raise SubmitError if no machine this dispatcher uses could ever run the job."""

    @abc.abstractmethod
    def largest_node(self) -> NodeSize:
        """The cores and RAM of the largest machine this dispatcher runs jobs on."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin starting queued jobs (idempotent)."""

    @abc.abstractmethod
    def wake(self) -> None:
        """Jobs were queued or resources freed: look again soon."""

    @abc.abstractmethod
    def reap_orphans(self) -> int:
        """End the jobs whose worker died; returns how many."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop starting jobs and wait for the ones this process runs to end."""
