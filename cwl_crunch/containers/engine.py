"""Finding a container engine and talking to it through the Docker Engine API.

Docker and Podman both serve that API (Podman with ``podman system service``), so one
code path, the ``docker`` SDK, covers both. The SDK is imported on first use: runs
without containers do not pay for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cwl_crunch.errors import EngineUnavailable

if TYPE_CHECKING:
    import docker

NO_ENGINE = "none"
DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKET = "/run/podman/podman.sock"

HOW_TO_GET_ONE = (
    "start Docker, or Podman's API service (as root: `podman system service --time=0 "
    f"unix://{PODMAN_SOCKET} &`; as a user: `systemctl --user start podman.socket`); "
    "name a socket elsewhere with --container-engine URL or CWL_CRUNCH_CONTAINER_ENGINE; "
    "or run the command on the host with --no-container"
)


def find_engine(setting: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The engine's API URL: the setting, else ``DOCKER_HOST``, else the first socket
    that exists of Docker's, root Podman's and the user's Podman's. None: no engine."""
    env = os.environ if environ is None else environ
    if setting == NO_ENGINE:
        return None
    if setting:
        return setting if "://" in setting else f"unix://{setting}"
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    sockets = [DOCKER_SOCKET, PODMAN_SOCKET]
    if env.get("XDG_RUNTIME_DIR"):
        sockets.append(f"{env['XDG_RUNTIME_DIR']}/podman/podman.sock")
    for socket in sockets:
        if Path(socket).is_socket():
            return f"unix://{socket}"
    return None


class Engine:
    """One engine's API; connects (and checks that it answers) on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: docker.DockerClient | None = None
        self._rootless: bool | None = None
        self._lock = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = connect(self.url)
            return self._client

    def rootless(self) -> bool:
        """A rootless engine maps container uid 0 to the user: files keep their owner
        only with Podman's ``keep-id`` user namespace."""
        if self._rootless is None:
            info = call(self.url, self.client().info)
            security = info.get("host", {}).get("security", {})  # Podman's extra info
            self._rootless = bool(security.get("rootless")) or "rootless" in str(
                info.get("SecurityOptions", ""))
        return self._rootless

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def connect(url: str) -> docker.DockerClient:
    """A client for the engine at ``url`` that has answered a ping."""
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=300)
        client.ping()
    except Exception as error:  # noqa: BLE001 - the SDK raises many kinds for "no engine"
        raise EngineUnavailable(
            f"container engine at {url} does not answer ({_short(error)}): {HOW_TO_GET_ONE}"
        ) from None
    return client


def call(url: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the SDK, turning a lost connection into EngineUnavailable."""
    import docker.errors
    import requests.exceptions

    try:
        return function(*args, **kwargs)
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as error:
        if isinstance(error, docker.errors.APIError | docker.errors.BuildError):
            raise
        raise EngineUnavailable(
            f"container engine at {url} stopped answering ({_short(error)})") from None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1][:300] if text else type(error).__name__
