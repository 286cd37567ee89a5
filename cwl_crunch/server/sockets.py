"""Listening sockets for the API, apart from serve.py: the job API of an embedded
cluster binds one at once but imports FastAPI and uvicorn only when a job connects
(see job_api.py)."""

from __future__ import annotations

import socket

from cwl_crunch.errors import ConfigError


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with ``IPPROTO_TCP`` spelled out: asyncio turns Nagle
    off only on sockets whose protocol says TCP, and with Nagle on every keep-alive
    response waits ~40 ms for the client's delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock
