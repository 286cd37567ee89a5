"""The core's container images as federation uses them: offered to a peer with a run
(recorded, so that the peer's token may export those and no others), described and
exported to it, and fetched from one (a registry first, by repository digest, else the
archive the peer exports). The logic of moving them is ``federation/images.py``; the
engine and the records stay the core's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cwl_crunch.containers import Images
from cwl_crunch.errors import ContainerError, ImageError
from cwl_crunch.records import access
from cwl_crunch.records.database import Database


class ImageOffers:
    """Part of ClusterCore (which sets ``images`` and ``database``)."""

    images: Images | None
    database: Database

    def has_container_engine(self) -> bool:
        return self.images is not None

    def image_digest_here(self, reference: str) -> str | None:
        """The digest this cluster's engine has ``reference`` (a name or a digest)
        under; None if it has none, has no engine, or the engine does not answer."""
        if self.images is None:
            return None
        try:
            return self.images.local_digest(reference)
        except ContainerError:
            return None

    def note_sent_image(self, peer_id: str, digest: str, name: str) -> None:
        """Image ``digest`` is offered to peer ``peer_id`` with a run: that peer's
        token may export it from this cluster's engine."""
        with self.database.writing() as connection:
            access.note_sent_image(connection, peer_id, digest, name)

    def image_sent(self, peer_id: str, digest: str) -> bool:
        with self.database.reading() as connection:
            return access.image_sent(connection, peer_id, digest)

    def described_image(self, digest: str) -> tuple[int, list[str]] | None:
        """Size and repository digests of image ``digest`` here (None: not here)."""
        return None if self.images is None else self.images.described(digest)

    def export_image(self, digest: str) -> Iterator[bytes]:
        """Its ``docker save`` archive, in chunks."""
        return self._engine_images().export(digest)

    def image_from_registry(self, references: list[str], digest: str) -> bool:
        """Whether a registry gave image ``digest`` by one of ``references``."""
        return self._engine_images().pulled_as(references, digest)

    def load_image_as(self, archive: Path, digest: str) -> None:
        """Load an archive that must hold image ``digest`` (ImageError if not)."""
        self._engine_images().load_as(archive, digest)

    def _engine_images(self) -> Images:
        if self.images is None:
            raise ImageError("this cluster has no container engine")
        return self.images
