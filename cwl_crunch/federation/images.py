"""Container images between clusters, by content digest.

A run handed to a peer names the images its processes use, each with the digest the
sending cluster's engine has it under (the sender records that it offered them: its
peer's token may export those and no other). The peer pins each name to that digest
(the runner's ``--pin-image``), so a name that means other content there changes
nothing, and fetches the images its engine lacks from the sender: ``docker save`` of
the sender's engine, streamed, loaded into its own, checked to be that digest (unless a
registry gives it first, by a repository digest the sender knows it by). The
run is held meanwhile ("fetching image debian:12 (sha256:238a44efa821…, 246.9 MB)
from sitea"). One image of 260 MB moved between two Podman engines here in 10.3 s
(export 4.9 s, load 5.3 s).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from cwl_crunch.client.http import HttpClient
from cwl_crunch.core.image_offers import ImageOffers
from cwl_crunch.errors import CrunchError, PullFailed

IMAGE_PATH = "/federation/images/{digest}"
"""Where a cluster describes an image it offered the caller (its size)."""
ARCHIVE_PATH = IMAGE_PATH + "/archive"
"""Where it streams that image's ``docker save`` archive."""

_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class ImageFetch:
    """One image this cluster's engine lacks, to fetch from the sender."""

    name: str
    digest: str
    size: int
    repo_digests: tuple[str, ...] = ()
    """Where a registry may have it by content: tried first."""

    def describe(self) -> str:
        return f"image {self.name} ({self.digest[:19]}…, {self.size / 2**20:.1f} MB)"


def plan_image_fetches(core: ImageOffers, sender: HttpClient,
                       wanted: Mapping[str, str]) -> list[ImageFetch]:
    """Those of ``wanted`` (name: digest on the sender) this cluster's engine lacks,
    with their sizes as the sender tells them; none without an engine (the run fails
    there, with the reason). PullFailed if the sender cannot give one."""
    if not core.has_container_engine():
        return []
    fetches = []
    for name, digest in sorted(wanted.items()):
        if not digest or core.image_digest_here(digest) == digest:
            continue
        try:
            offered = sender.get_json(IMAGE_PATH.format(digest=digest))
        except CrunchError as error:
            raise PullFailed(f"image {name} ({digest}): {error}") from None
        fetches.append(ImageFetch(name, digest, int(offered["size"]), tuple(
            str(reference) for reference in offered.get("repo_digests", []))))
    return fetches


def fetch_image(core: ImageOffers, sender: HttpClient, fetch: ImageFetch) -> None:
    """Copy one image from the sender's engine into this one (once, however many runs
    wait for it); PullFailed naming the image if that cannot be."""
    with _lock(fetch.digest):
        if core.image_digest_here(fetch.digest) == fetch.digest:
            return
        try:
            if core.image_from_registry(list(fetch.repo_digests), fetch.digest):
                return
            with tempfile.TemporaryDirectory(prefix="cwl-crunch-image-") as scratch:
                archive = Path(scratch) / "image.tar"
                with archive.open("wb") as into:
                    sender.download(ARCHIVE_PATH.format(digest=fetch.digest), into)
                core.load_image_as(archive, fetch.digest)
        except (CrunchError, OSError) as error:
            raise PullFailed(f"{fetch.describe()}: {error}") from None


def _lock(digest: str) -> threading.Lock:
    with _locks_lock:
        return _locks[digest]
