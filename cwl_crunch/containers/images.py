"""Images: a name to the content digest that identifies it, pulled or built once.

A job records the digest, never only the name: the digest is what its reuse key holds,
so re-tagging other content under a name breaks reuse and the same content under
another name keeps it.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from cwl_crunch.containers.engine import Engine, call
from cwl_crunch.errors import ContainerError, ImageError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
BUILD_REPOSITORY = "localhost/cwl-crunch-build"


def is_digest(reference: str) -> bool:
    return bool(_DIGEST.match(reference))


class Images:
    """The images of one engine. Thread-safe: concurrent asks for one missing image
    pull it once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks[key]

    def local_digest(self, reference: str) -> str | None:
        """The digest of an image the engine has, or None."""
        import docker.errors

        client = self.engine.client()
        try:
            image = call(self.engine.url, client.images.get, reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as error:
            if error.status_code == 404:
                return None
            raise ImageError(f"image {reference}: {error.explanation or error}") from None
        digest: str = image.id
        return digest

    def digest(self, reference: str) -> str:
        """The digest of ``reference`` (a name or an id), pulling it if the engine lacks it."""
        found = self.local_digest(reference)
        if found is not None:
            return found
        if is_digest(reference):
            raise ImageError(f"image {reference}: no image with that id on {self.engine.url}")
        with self._lock(reference):
            return self.local_digest(reference) or self._pull(reference)

    def _pull(self, reference: str) -> str:
        import docker.errors

        client = self.engine.client()
        try:
            image = call(self.engine.url, client.images.pull, reference)
        except docker.errors.APIError as error:
            raise ImageError(f"image {reference}: not on {self.engine.url} and pulling it "
                             f"failed: {error.explanation or error}") from None
        digest: str = image.id
        return digest

    def build(self, dockerfile: str) -> str:
        """Build a Dockerfile (once: the tag is its hash); returns the image name."""
        tag = f"{BUILD_REPOSITORY}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:20]}"
        with self._lock(tag):
            if self.local_digest(tag) is not None:
                return tag
            context = io.BytesIO()
            with tarfile.open(fileobj=context, mode="w") as tar:
                data = dockerfile.encode()
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            context.seek(0)
            self._build(tag, context)
        return tag

    def _build(self, tag: str, context: io.BytesIO) -> None:
        import docker.errors

        client = self.engine.client()
        try:
            call(self.engine.url, client.images.build, fileobj=context, custom_context=True,
                 tag=tag, rm=True, forcerm=True)
        except docker.errors.BuildError as error:
            steps = "".join(str(chunk.get("stream", "")) for chunk in error.build_log)
            last = steps.strip().splitlines()[-3:]
            raise ImageError(f"building the image from dockerFile failed: {error.msg}"
                             + (f" ({' / '.join(last)})" if last else "")) from None
        except docker.errors.APIError as error:
            raise ImageError(f"building the image from dockerFile failed: "
                             f"{error.explanation or error}") from None

    def load(self, archive: Path, reference: str | None) -> str:
        """Load an image archive (``docker save`` output) unless ``reference`` is there
        already; returns a name or id to run it by."""
        import docker.errors

        key = reference or str(archive)
        with self._lock(key):
            if reference and self.local_digest(reference) is not None:
                return reference
            client = self.engine.client()
            try:
                with archive.open("rb") as data:
                    loaded = call(self.engine.url, client.images.load, data)
            except docker.errors.APIError as error:  # before OSError: it is one
                raise ImageError(f"dockerLoad {archive}: the engine could not load it: "
                                 f"{error.explanation or error}") from None
            except OSError as error:
                raise ImageError(f"dockerLoad {archive}: {error.strerror or error}") from None
            if not loaded:
                raise ImageError(f"dockerLoad {archive}: the archive held no image")
            if reference and self.local_digest(reference) is not None:
                return reference
            loaded_id: str = loaded[0].id
            return loaded_id

    def described(self, digest: str) -> tuple[int, list[str]] | None:
        """Image ``digest`` on the engine: its size in bytes and its repository digests
        (``docker.io/library/debian@sha256:...``: where a registry has it by content);
        None if the engine has no such image."""
        if self.local_digest(digest) != digest:
            return None
        image = call(self.engine.url, self.engine.client().images.get, digest)
        return int(image.attrs.get("Size") or 0), list(image.attrs.get("RepoDigests") or [])

    def pulled_as(self, references: list[str], digest: str) -> bool:
        """Pull the first of ``references`` (repository digests) that a registry gives
        and that turns out to be image ``digest``; whether one did."""
        for reference in references:
            try:
                if self._pull(reference) == digest:
                    return True
            except ContainerError:  # no registry has it, or none answers: the next
                continue
        return False

    def export(self, digest: str) -> Iterator[bytes]:
        """The ``docker save`` archive of image ``digest``, in chunks (260 MB of the
        suite's Debian image in 4.9 s through Podman's API here)."""
        import docker.errors

        try:
            yield from call(self.engine.url, self.engine.client().api.get_image, digest)
        except docker.errors.APIError as error:
            raise ImageError(f"image {digest}: the engine could not export it: "
                             f"{error.explanation or error}") from None

    def load_as(self, archive: Path, digest: str) -> None:
        """Load an archive that must hold image ``digest`` (the engine checks each
        layer against its hash; the image's id is the hash of its config, checked
        here): ImageError if it holds another."""
        loaded = self.load(archive, None)
        if loaded != digest and self.local_digest(digest) != digest:
            raise ImageError(f"the image archive held {loaded}, not {digest}")
