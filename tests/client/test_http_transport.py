"""The HTTP transport: a worker's requests outlive a restart of its server."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cwl_crunch.client.http_transport import RECONNECT_PAUSE, Transport
from cwl_crunch.errors import ApiError


class Answering(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        body = b'{"cluster_id": "local"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def late_server() -> Iterator[tuple[int, threading.Event]]:
    """A port nothing listens on until ``start`` is set."""
    port, start, servers = free_port(), threading.Event(), []

    def serve_when_asked() -> None:
        start.wait()
        server = http.server.HTTPServer(("127.0.0.1", port), Answering)
        servers.append(server)
        server.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=serve_when_asked, daemon=True)
    thread.start()
    yield port, start
    start.set()
    deadline = time.monotonic() + 5
    while not servers and time.monotonic() < deadline:
        time.sleep(0.01)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_an_error_at_once_by_default(late_server):
    port, _ = late_server
    transport = Transport(f"http://127.0.0.1:{port}", "token")
    started = time.monotonic()
    with pytest.raises(ApiError, match="cannot reach the cluster"):
        transport.json("GET", "/cluster")
    assert time.monotonic() - started < RECONNECT_PAUSE


def test_requests_wait_for_a_server_that_comes_back(late_server):
    port, start = late_server
    transport = Transport(f"http://127.0.0.1:{port}", "token", reconnect_for=30)
    threading.Timer(1.5, start.set).start()
    assert transport.json("GET", "/cluster") == {"cluster_id": "local"}


def test_waiting_for_the_server_gives_up_in_time(late_server):
    port, _ = late_server
    transport = Transport(f"http://127.0.0.1:{port}", "token", reconnect_for=2)
    started = time.monotonic()
    with pytest.raises(ApiError, match="cannot reach the cluster"):
        transport.json("GET", "/cluster")
    assert 1 <= time.monotonic() - started < 4
