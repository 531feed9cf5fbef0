"""A real, tiny HTTP server on 127.0.0.1 for the outbound-request tests (never any other address).

Each path answers with a behaviour: a plain answer, a redirect, a huge body written chunk by chunk, or a
body dripped one byte at a time. The server counts what it was asked and how many body bytes it managed
to write, so a test can tell "cut off at the limit" from "read it all, then complained".
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "STUB-TEXT-4f7c2e9a"  # in every stub body; it must never reach a page, a message or a log line

Behaviour = Callable[[BaseHTTPRequestHandler, "LoopbackStub"], None]


class LoopbackStub:
    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.hits: list[str] = []
        self.bytes_written = 0
        self.stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                stub.hits.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                behaviour = stub.routes.get(self.path.split("?")[0], answer(404, f"{MARKER} no such path"))
                # The client hanging up is what the size and time limits are for.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    behaviour(self, stub)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "", *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> LoopbackStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _head(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Connection", "close")
    handler.end_headers()


def answer(status: int, body: str, content_type: str = "application/json") -> Behaviour:
    def behave(handler: BaseHTTPRequestHandler, stub: LoopbackStub) -> None:
        data = body.encode()
        _head(handler, status, {"Content-Type": content_type, "Content-Length": str(len(data))})
        handler.wfile.write(data)
        stub.bytes_written += len(data)

    return behave


def redirect(location: str, status: int = 302) -> Behaviour:
    def behave(handler: BaseHTTPRequestHandler, stub: LoopbackStub) -> None:
        data = f"{MARKER} moved".encode()
        _head(handler, status, {"Location": location, "Content-Type": "text/plain",
                                "Content-Length": str(len(data))})
        handler.wfile.write(data)

    return behave


def huge(total: int = 200 * 1024 * 1024, chunk: int = 64 * 1024, content_type: str = "text/plain") -> Behaviour:
    """`total` bytes, made as they are sent (a generator), starting with the marker."""

    def chunks() -> Iterator[bytes]:
        sent = 0
        first = (MARKER + " ").encode()
        while sent < total:
            piece = (first if sent == 0 else b"") + b"x" * (chunk - (len(first) if sent == 0 else 0))
            sent += len(piece)
            yield piece

    def behave(handler: BaseHTTPRequestHandler, stub: LoopbackStub) -> None:
        _head(handler, 200, {"Content-Type": content_type, "Content-Length": str(total)})
        for piece in chunks():
            if stub.stopping.is_set():
                return
            handler.wfile.write(piece)
            stub.bytes_written += len(piece)

    return behave


def drip(*, every: float = 0.05, for_at_most: float = 8.0, content_type: str = "text/plain") -> Behaviour:
    """Headers at once, then one byte of body every `every` seconds, for at most `for_at_most` seconds."""

    def behave(handler: BaseHTTPRequestHandler, stub: LoopbackStub) -> None:
        body = (MARKER + " ").encode() * 10_000
        _head(handler, 200, {"Content-Type": content_type, "Content-Length": str(len(body))})
        handler.wfile.flush()
        started = time.monotonic()
        for i in range(len(body)):
            if stub.stopping.is_set() or time.monotonic() - started > for_at_most:
                return
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            stub.bytes_written += 1
            time.sleep(every)

    return behave
