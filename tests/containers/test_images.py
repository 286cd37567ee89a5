"""Images: names to digests, builds and loads (on a real engine: ``podman`` marker)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import docker.models.images
import pytest

from cwl_crunch.containers import Engine, Images, is_digest
from cwl_crunch.containers.images import BUILD_REPOSITORY
from cwl_crunch.errors import ContainerError, EngineUnavailable, ImageError

BASE_IMAGE = "docker.io/debian:stable-slim"
TEST_LABEL = "cwl-crunch-test"


@pytest.fixture
def engine_images(engine_url):
    engine = Engine(engine_url)
    try:
        yield Images(engine)
    finally:
        engine.close()


def dockerfile(nonce: str, body: str = "RUN echo built > /built.txt") -> str:
    """Labelled so the ``images`` fixture removes what the test builds."""
    return f"FROM {BASE_IMAGE}\n{body}\nLABEL {TEST_LABEL}={nonce}\n"


def test_is_digest():
    assert is_digest("sha256:" + "0123456789abcdef" * 4)
    assert not is_digest("sha256:" + "0" * 63)
    assert not is_digest("sha256:" + "A" * 64)
    assert not is_digest("debian:stable-slim")
    assert not is_digest("0" * 64)


@pytest.mark.podman
def test_a_name_and_its_id_have_the_same_digest(engine_images, docker_client):
    image_id = docker_client.images.get(BASE_IMAGE).id
    assert engine_images.digest(BASE_IMAGE) == image_id
    assert engine_images.digest(image_id) == image_id
    assert engine_images.local_digest(BASE_IMAGE) == image_id


@pytest.mark.podman
def test_an_unknown_id_is_not_pulled(engine_images, monkeypatch):
    def no_pull(reference: str) -> str:
        raise AssertionError(f"pulled {reference}")

    monkeypatch.setattr(engine_images, "_pull", no_pull)
    unknown = "sha256:" + "0" * 64
    with pytest.raises(ImageError, match=f"image {unknown}: no image with that id"):
        engine_images.digest(unknown)


@pytest.mark.podman
def test_a_missing_name_that_cannot_be_pulled(engine_images, nonce, engine_url):
    missing = f"localhost/crunch-missing-{nonce}:v1"
    assert engine_images.local_digest(missing) is None
    with pytest.raises(ImageError) as raised:
        engine_images.digest(missing)
    message = str(raised.value)
    assert message.startswith(f"image {missing}: not on {engine_url} and pulling it failed")


@pytest.mark.podman
def test_a_dockerfile_is_built_once_under_its_hash(engine_images, images, nonce,
                                                  docker_client, monkeypatch):
    text = dockerfile(nonce)
    builds: list[str] = []
    real_build = engine_images._build

    def counting_build(tag, context):
        builds.append(tag)
        real_build(tag, context)

    monkeypatch.setattr(engine_images, "_build", counting_build)
    threads = [threading.Thread(target=engine_images.build, args=(text,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    tag = engine_images.build(text)

    assert tag == f"{BUILD_REPOSITORY}:{hashlib.sha256(text.encode()).hexdigest()[:20]}"
    assert builds == [tag], "three threads and a second call: one build"
    image = docker_client.images.get(tag)
    assert image.labels[TEST_LABEL] == nonce
    assert engine_images.digest(tag) == image.id


@pytest.mark.podman
def test_a_dockerfile_that_fails_to_build_says_so(engine_images, images, nonce):
    with pytest.raises(ImageError, match="building the image from dockerFile failed"):
        engine_images.build(dockerfile(nonce, "RUN echo about to fail && false"))


@pytest.mark.podman
def test_a_dockerfile_that_fails_to_build_is_a_container_error(engine_images, images,
                                                               nonce):
    """Whatever its class, callers that catch ContainerError see the failed step."""
    with pytest.raises(ContainerError) as raised:
        engine_images.build(dockerfile(nonce, "RUN echo about to fail && false"))
    assert "false" in str(raised.value)


@pytest.mark.podman
def test_load_an_archive_once(engine_images, images, nonce, docker_client, tmp_path,
                              monkeypatch):
    name = f"localhost/crunch-load-{nonce}:v1"
    image = images.build(f"FROM {BASE_IMAGE}\nRUN echo {nonce} > /loaded.txt", tag=name)
    archive = tmp_path / "image.tar"
    with archive.open("wb") as out:
        for chunk in image.save(named=name):
            out.write(chunk)
    docker_client.images.remove(image.id, force=True)

    assert engine_images.load(archive, name) == name
    assert docker_client.images.get(name).id == image.id

    def no_load(*args: object) -> None:
        raise AssertionError("loaded again although the image is there")

    monkeypatch.setattr(docker.models.images.ImageCollection, "load", no_load)
    assert engine_images.load(archive, name) == name


@pytest.mark.podman
def test_load_without_a_name_runs_by_the_loaded_id(engine_images, images, nonce,
                                                    docker_client, tmp_path):
    image = images.build(f"FROM {BASE_IMAGE}\nRUN echo {nonce} > /loaded.txt",
                         tag=f"localhost/crunch-load-{nonce}:v1")
    archive = tmp_path / "image.tar"
    with archive.open("wb") as out:
        for chunk in image.save():
            out.write(chunk)
    docker_client.images.remove(image.id, force=True)
    assert engine_images.load(archive, None) == image.id


@pytest.mark.podman
def test_load_errors_name_the_archive(engine_images, tmp_path):
    missing = tmp_path / "missing.tar"
    with pytest.raises(ImageError, match=f"dockerLoad {missing}: No such file"):
        engine_images.load(missing, None)
    junk = tmp_path / "junk.tar"
    junk.write_text("not an image\n")
    with pytest.raises(ImageError) as raised:
        engine_images.load(junk, None)
    assert str(raised.value).startswith(f"dockerLoad {junk}: ")
    assert "load" in str(raised.value)


@pytest.mark.podman
def test_an_archive_the_engine_refuses_says_so(engine_images, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_text("not an image\n")
    with pytest.raises(ImageError, match=f"dockerLoad {junk}: the engine could not load it"):
        engine_images.load(junk, None)


def test_an_engine_that_is_down(tmp_path):
    down = Images(Engine(f"unix://{tmp_path}/no.sock"))
    with pytest.raises(EngineUnavailable, match="does not answer"):
        down.digest(BASE_IMAGE)
    with pytest.raises(EngineUnavailable, match="does not answer"):
        down.build(f"FROM {BASE_IMAGE}\n")
    with pytest.raises(EngineUnavailable):
        down.load(Path("/nonexistent.tar"), "x:y")
