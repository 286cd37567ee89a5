"""Finding a container engine and connecting to one (no engine needed)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests.exceptions

from cwl_crunch.containers import Engine, engine, find_engine
from cwl_crunch.containers.engine import HOW_TO_GET_ONE, call, connect
from cwl_crunch.errors import EngineUnavailable


@pytest.fixture(autouse=True)
def no_fixed_sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine may have Docker's or Podman's socket: point both elsewhere."""
    monkeypatch.setattr(engine, "DOCKER_SOCKET", str(tmp_path / "docker.sock"))
    monkeypatch.setattr(engine, "PODMAN_SOCKET", str(tmp_path / "podman.sock"))


@contextlib.contextmanager
def unix_socket(path: Path, listen: bool = False) -> Iterator[Path]:
    """A real unix socket at ``path`` (bound; listening if asked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(str(path)) > 100:
        pytest.skip(f"socket path too long for AF_UNIX: {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        if listen:
            sock.listen(1)
        yield path
    finally:
        sock.close()


def test_none_means_no_engine_whatever_the_environment(tmp_path):
    with unix_socket(tmp_path / "docker.sock"):
        assert find_engine("none", {"DOCKER_HOST": "unix:///x.sock"}) is None


def test_an_explicit_url_wins(tmp_path):
    with unix_socket(tmp_path / "docker.sock"):
        assert find_engine("tcp://10.0.0.1:2375", {"DOCKER_HOST": "unix:///x.sock"}) == \
            "tcp://10.0.0.1:2375"
        assert find_engine("unix:///a/b.sock", {}) == "unix:///a/b.sock"


def test_a_bare_path_is_a_unix_socket_url():
    assert find_engine("/run/user/1000/podman/podman.sock", {}) == \
        "unix:///run/user/1000/podman/podman.sock"


def test_docker_host_comes_before_any_socket(tmp_path):
    runtime = tmp_path / "rt"
    with unix_socket(tmp_path / "docker.sock"), unix_socket(runtime / "podman/podman.sock"):
        found = find_engine("", {"DOCKER_HOST": "tcp://engine:2375",
                                 "XDG_RUNTIME_DIR": str(runtime)})
    assert found == "tcp://engine:2375"


def test_an_empty_docker_host_is_ignored(tmp_path):
    with unix_socket(tmp_path / "podman.sock"):
        assert find_engine("", {"DOCKER_HOST": ""}) == f"unix://{tmp_path}/podman.sock"


def test_the_process_environment_is_the_default(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///from/env.sock")
    assert find_engine("") == "unix:///from/env.sock"


def test_users_podman_socket_is_found_under_xdg_runtime_dir(tmp_path):
    runtime = tmp_path / "rt"
    with unix_socket(runtime / "podman" / "podman.sock"):
        assert find_engine("", {"XDG_RUNTIME_DIR": str(runtime)}) == \
            f"unix://{runtime}/podman/podman.sock"


def test_a_file_that_is_not_a_socket_is_not_an_engine(tmp_path):
    runtime = tmp_path / "rt"
    (runtime / "podman").mkdir(parents=True)
    (runtime / "podman" / "podman.sock").write_text("")
    (tmp_path / "docker.sock").mkdir()
    assert find_engine("", {"XDG_RUNTIME_DIR": str(runtime)}) is None


def test_no_setting_no_variable_no_socket_is_no_engine():
    assert find_engine("", {}) is None


def test_sockets_in_order_docker_root_podman_user_podman(tmp_path):
    runtime = tmp_path / "rt"
    with unix_socket(runtime / "podman" / "podman.sock"):
        environ = {"XDG_RUNTIME_DIR": str(runtime)}
        with unix_socket(tmp_path / "podman.sock"):
            assert find_engine("", environ) == f"unix://{tmp_path}/podman.sock"
            with unix_socket(tmp_path / "docker.sock"):
                assert find_engine("", environ) == f"unix://{tmp_path}/docker.sock"


def test_connecting_to_a_missing_socket_says_where_and_how_to_get_an_engine(tmp_path):
    url = f"unix://{tmp_path}/nothing/podman.sock"
    with pytest.raises(EngineUnavailable) as raised:
        connect(url)
    message = str(raised.value)
    assert url in message
    assert "does not answer" in message
    assert message.endswith(HOW_TO_GET_ONE)
    assert "--container-engine" in message and "--no-container" in message


def test_a_socket_nobody_serves_is_unavailable(tmp_path):
    # Bound, not listening: connections are refused.
    with unix_socket(tmp_path / "s.sock") as path, \
            pytest.raises(EngineUnavailable, match="does not answer"):
        connect(f"unix://{path}")


def test_engine_connects_on_first_use_only(tmp_path):
    url = f"unix://{tmp_path}/nothing.sock"
    lazy = Engine(url)  # no engine call yet: constructing must not fail
    assert lazy.url == url
    with pytest.raises(EngineUnavailable, match=r"nothing\.sock"):
        lazy.client()
    lazy.close()


def test_call_turns_a_lost_connection_into_engine_unavailable():
    def lost() -> None:
        raise requests.exceptions.ConnectionError("Connection aborted.")

    with pytest.raises(EngineUnavailable, match=r"unix:///e.sock stopped answering"):
        call("unix:///e.sock", lost)


def test_call_passes_the_engines_own_errors_through():
    import docker.errors

    def refused() -> None:
        raise docker.errors.NotFound("no such image")

    with pytest.raises(docker.errors.NotFound):
        call("unix:///e.sock", refused)
    assert call("unix:///e.sock", lambda a, b=0: a + b, 1, b=2) == 3


class FakeDockerClient:
    def __init__(self, info: dict[str, object]) -> None:
        self._info = info
        self.calls = 0

    def info(self) -> dict[str, object]:
        self.calls += 1
        return self._info

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("info", "rootless"), [
    ({"host": {"security": {"rootless": True}}}, True),           # Podman's libpod info
    ({"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]}, True),
    ({"host": {"security": {"rootless": False}},
      "SecurityOptions": ["name=seccomp,profile=default"]}, False),
    ({}, False),
])
def test_rootless_engine_is_told_from_its_info(info, rootless):
    fake = FakeDockerClient(info)
    probed = Engine("unix:///fake.sock")
    probed._client = fake  # type: ignore[assignment]
    assert probed.rootless() is rootless
    assert probed.rootless() is rootless
    assert fake.calls == 1, "asked once per engine"
