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


@pytest.fixture
def dying_once() -> Iterator[tuple[int, list[str]]]:
    """A server whose first connection closes after reading the request, unanswered (as
    a server killed mid-request does); later ones answer. Yields its port and the
    request lines it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                request = connection.recv(65536).decode(errors="replace")
                seen.append(request.split("\r\n", 1)[0])
                if len(seen) == 1:
                    continue  # closed with no answer
                body = b'{"cluster_id": "local"}'
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Connection: close\r\nContent-Length: "
                                   + str(len(body)).encode() + b"\r\n\r\n" + body)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], seen
    listener.close()


def test_a_get_is_sent_again_when_the_connection_broke_before_its_answer(dying_once):
    port, seen = dying_once
    transport = Transport(f"http://127.0.0.1:{port}", "token", reconnect_for=30)
    assert transport.json("GET", "/cluster") == {"cluster_id": "local"}
    assert seen == ["GET /api/v1/cluster HTTP/1.1"] * 2


def test_a_post_is_not_sent_again_when_the_server_may_have_seen_it(dying_once):
    """It may have done what it asked (a submission): doing it twice is worse."""
    port, seen = dying_once
    transport = Transport(f"http://127.0.0.1:{port}", "token", reconnect_for=30)
    with pytest.raises(ApiError, match="cannot reach the cluster"):
        transport.json("POST", "/jobs", json={})
    assert seen == ["POST /api/v1/jobs HTTP/1.1"]
