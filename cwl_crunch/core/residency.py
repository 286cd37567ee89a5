"""The core's data residency: which collections stay on this cluster (records.residency
decides at each job's end), the release rules a site's administrator keeps, and the
answers the server enforces (server/access.py refuses resident data to peers and to
runs whose values travel to one)."""

from __future__ import annotations

from collections.abc import Sequence

from cwl_crunch.config import Config
from cwl_crunch.errors import CollectionNotFound, JobNotFound, StoreError, SubmitError
from cwl_crunch.model import CollectionMount, JobSpec
from cwl_crunch.model.residency import CollectionResidency, ReleaseRuleRecord, Whereabouts
from cwl_crunch.records import access, jobs, residency
from cwl_crunch.records.database import Database
from cwl_crunch.store import CollectionStore
from cwl_crunch.store.locators import manifest_locators


class ResidencyRecords:
    """Part of ClusterCore (which sets ``database``, ``store``, ``config`` and
    ``cluster_id``)."""

    database: Database
    store: CollectionStore
    config: Config
    cluster_id: str

    @property
    def keeps_everything(self) -> bool:
        """The config says ``residency = "resident"``."""
        return self.config.residency == "resident"

    def residency(self, pdh: str) -> CollectionResidency | None:
        """``pdh``'s residency record (None: it may travel)."""
        with self.database.reading() as connection:
            return residency.residency_of(connection, pdh)

    def residencies(self, pdhs: Sequence[str]) -> dict[str, CollectionResidency]:
        with self.database.reading() as connection:
            return residency.residencies(connection, pdhs)

    def resident_here(self, pdh: str) -> CollectionResidency | None:
        """``pdh``'s record if it must stay here (resident, not released)."""
        found = self.residency(pdh)
        return found if found is not None and found.resident else None

    def whereabouts(self, pdh: str) -> Whereabouts:
        """Whether this cluster holds ``pdh``, and whether it stays here."""
        held = self.store.has_collection(pdh)
        found = self.resident_here(pdh) if held else None
        return Whereabouts(self.cluster_id, held, found is not None,
                           found.reason if found is not None else "")

    def make_resident(self, pdh: str, reason: str = "") -> CollectionResidency:
        """A person's decision: collection ``pdh`` (held here) stays here."""
        if not self.store.has_collection(pdh):
            raise CollectionNotFound(f"no collection {pdh} on cluster {self.cluster_id}")
        with self.database.writing() as connection:
            residency.make_resident(connection, pdh, reason or "stored resident")
            found = residency.residency_of(connection, pdh)
        assert found is not None
        return found

    def stored_by_person(self, pdh: str, *, resident: bool = False) -> None:
        """A person stored ``pdh``: it stays if asked, or if this cluster keeps
        everything."""
        if resident:
            self.make_resident(pdh, "stored resident")
        elif self.keeps_everything and self.residency(pdh) is None:
            self.make_resident(pdh, f"stored on cluster {self.cluster_id}, where "
                                    "everything stays")

    def note_resident_read(self, job_uuid: str, pdh: str) -> None:
        """Job ``job_uuid``'s token read the contents of resident collection ``pdh``:
        what it makes stays here too."""
        with self.database.writing() as connection:
            residency.note_read(connection, job_uuid, pdh)

    def below_peer_run(self, job_uuid: str) -> str | None:
        """The peer whose run job ``job_uuid`` is (or is below): its values travel
        there. None: a job of this cluster's own people."""
        with self.database.reading() as connection:
            return access.peer_root(connection, job_uuid)

    def job_resident_cause(self, job_uuid: str) -> str | None:
        """The resident collection job ``job_uuid`` mounted or read (None: none)."""
        with self.database.reading() as connection:
            row = jobs.get_job(connection, job_uuid)
            return residency.resident_cause(connection, dict(row._mapping))

    def shares_blocks(self, output_pdh: str, source_pdh: str) -> bool:
        """Whether collection ``output_pdh`` holds any block of ``source_pdh`` (a job's
        output that is, or copies, part of its resident input is never released);
        True when either cannot be read."""
        try:
            made = set(manifest_locators(self.store.manifest_text(output_pdh)))
            source = manifest_locators(self.store.manifest_text(source_pdh))
        except StoreError:
            return True
        return not made.isdisjoint(source)

    def check_outward_mounts(self, spec: JobSpec, parent_uuid: str | None) -> None:
        """SubmitError for a job of a peer's run that mounts resident data and could
        reach beyond its container: run on the host, or with network, its command could
        write the data into records that travel (a job's token may submit children and
        report its own end) or send it anywhere."""
        pdhs = [mount.pdh for mount in spec.mounts.values()
                if isinstance(mount, CollectionMount)]
        if parent_uuid is None or not pdhs or (spec.image is not None and not spec.network):
            return
        staying = [pdh for pdh, found in self.residencies(pdhs).items() if found.resident]
        if not staying:
            return
        with self.database.reading() as connection:
            try:
                peer = access.peer_root(connection, parent_uuid)
            except JobNotFound:
                return  # a parent of another cluster: the submit itself says so
        if peer is not None:
            how = "in a container" if spec.image is None else "without network access"
            raise SubmitError(f"job {spec.name or spec.command[0]!r} of a run cluster {peer} "
                              f"submitted mounts collection {staying[0]}, resident on "
                              f"cluster {self.cluster_id}: it must run {how} (resident "
                              "data never leaves its cluster)")

    # Release rules ----------------------------------------------------------------------
    def add_release_rule(self, image_digest: str, command_prefix: Sequence[str] | None,
                         note: str) -> ReleaseRuleRecord:
        with self.database.writing() as connection:
            return residency.add_rule(connection, self.cluster_id, image_digest,
                                      command_prefix, note)

    def release_rules(self, *, removed: bool = False) -> list[ReleaseRuleRecord]:
        with self.database.reading() as connection:
            return residency.list_rules(connection, removed=removed)

    def remove_release_rule(self, uuid: str) -> ReleaseRuleRecord:
        with self.database.writing() as connection:
            return residency.remove_rule(connection, uuid)
