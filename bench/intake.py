"""Webhook intake under the production server (DESIGN §12): gunicorn, persistent database connections,
20 concurrent clients on 127.0.0.1, the signed simulator endpoint against a bare view on the same server.

The server is `gunicorn portal.wsgi` with GUNICORN_ARGS (the README's production recommendation for a
2-core machine: 3 sync workers) on the bench's throwaway PostgreSQL database. The load comes from
LOAD_PROCESSES forked processes of threads writing prebuilt requests to raw sockets, so the client costs
far less than the server it measures. Needs PostgreSQL: the server's processes must share the database.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from bench import fleet

if TYPE_CHECKING:
    from collections.abc import Iterator

Report = Callable[[str, str, bool], None]

CONCURRENCY = 20
LOAD_PROCESSES = 2
GUNICORN_ARGS = ["--workers", os.environ.get("BENCH_GUNICORN_WORKERS", "3"), "--worker-class", "sync"]
BARE_PATH = "/bench/bare/"
WARMUP = 100


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        return f"{self.rate:.0f}/s, p50 {self.percentile(50) * 1000:.0f} ms, p99 {self.percentile(99) * 1000:.0f} ms"


def run(report: Report, quick: bool) -> None:
    if connection.vendor != "postgresql":
        print("skip  webhook intake under gunicorn: needs DATABASE_URL on PostgreSQL", flush=True)
        return
    from providers.simulator import sign, simulator_account_prepare

    _tenant, _prop, account = fleet.tenant_with_account("intake")
    simulator_account_prepare(account=account)
    path = f"/webhooks/simulator/{account.uuid}/"
    per_round, rounds = (600, 1) if quick else (1_500, 2)
    serial = iter(range(10**9))

    def intake_requests(count: int) -> list[bytes]:
        made = []
        for _ in range(count):
            body = json.dumps({"event_id": f"bench-{next(serial)}", "profile": "seam", "device_id": "nowhere",
                               "type": "device.battery", "detail": "bench",
                               "occurred_at": timezone.now().isoformat()}).encode()
            made.append(_request(path, body, {"X-Simulator-Signature": f"sha256={sign(body, account.webhook_secret)}"}))
        return made

    def bare_requests(count: int) -> list[bytes]:
        body = json.dumps({"ok": True}).encode()
        return [_request(BARE_PATH, body, {})] * count

    with gunicorn() as port:
        _load(port, bare_requests(WARMUP))  # warm every worker: imports, connections, caches
        _load(port, intake_requests(WARMUP))
        bare: list[Load] = []
        intake: list[Load] = []
        for _ in range(rounds):  # alternate, so a neighbour's burst on this shared machine hits both
            bare.append(_load(port, bare_requests(per_round)))
            intake.append(_load(port, intake_requests(per_round)))
    b, i = _merged(bare), _merged(intake)
    stored = _stored(account.pk)
    expected = WARMUP + per_round * rounds
    ratio = i.rate / b.rate
    print(f"info  bare view under gunicorn: {b.summary()}", flush=True)
    print(f"info  webhook intake under gunicorn: {i.summary()} ({stored} of {expected} stored)", flush=True)
    ok = ratio >= 0.5 and i.failures == 0 and b.failures == 0 and stored == expected
    report(f"webhook intake vs bare view (gunicorn {' '.join(GUNICORN_ARGS[1::2])}, concurrency {CONCURRENCY})",
           f"{ratio:.2f}× ({i.rate:.0f}/s p50 {i.percentile(50) * 1000:.0f} ms p99 {i.percentile(99) * 1000:.0f} ms "
           f"vs {b.rate:.0f}/s p50 {b.percentile(50) * 1000:.0f} ms p99 {b.percentile(99) * 1000:.0f} ms; "
           f"{i.failures + b.failures} failed; ≥ 0.5×)", ok)


def _stored(account_id: int) -> int:
    from providers.models import WebhookEvent

    return WebhookEvent.objects.filter(provider_account_id=account_id).count()


def _merged(loads: list[Load]) -> Load:
    return Load(requests=sum(x.requests for x in loads), seconds=sum(x.seconds for x in loads),
                latencies=[t for x in loads for t in x.latencies], failures=sum(x.failures for x in loads))


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server or worker process: bench settings on this run's throwaway database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": url,
            "SECURE_SSL_REDIRECT": "0", "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn() -> Iterator[int]:
    """gunicorn serving the project's WSGI application (bench URLs) on a free port; always stopped."""
    port = free_port()
    # Its output (django-q logs each enqueued task) goes to a file, as production's goes to a log: shown
    # only when the server fails to start.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
             *GUNICORN_ARGS, "--log-level", "warning"],
            env=server_env(), start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            try:
                _wait_until_serving(port, process)
            except RuntimeError:
                log.seek(0)
                print(log.read().decode(errors="replace")[-4000:], file=sys.stderr)
                raise
            yield port
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Stop a process and everything it started (its own session): asked first, then whatever is left of
    the group is killed (a leader may exit before its children)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            status, _ = _exchange(port, _request(BARE_PATH, b"{}", {}))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def _exchange(port: int, request: bytes, sock: socket.socket | None = None) -> tuple[int, bool]:
    """Send one request; return the status and whether the server keeps the connection open."""
    own = sock is None
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(fields.get("content-length", "0"))
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, fields.get("connection") != "close"
    finally:
        if own:
            s.close()


def _client(port: int, requests: list[bytes], results: multiprocessing.Queue[tuple[list[float], int]],
            threads: int) -> None:
    """One load process: `threads` threads, each with its own (kept-alive when the server allows) connection."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    pending = iter(requests)

    def worker() -> None:
        nonlocal failures
        sock: socket.socket | None = None
        mine: list[float] = []
        bad = 0
        while True:
            with lock:
                request = next(pending, None)
            if request is None:
                break
            start = time.perf_counter()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                status, keep = _exchange(port, request, sock)
            except OSError:
                status, keep = 0, False
            mine.append(time.perf_counter() - start)
            bad += status != 200
            if not keep and sock is not None:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()
        with lock:
            latencies.extend(mine)
            failures += bad

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put((latencies, failures))


def _load(port: int, requests: list[bytes]) -> Load:
    """CONCURRENCY clients in LOAD_PROCESSES processes (forked, so the GIL of one does not pace the other)."""
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[tuple[list[float], int]] = ctx.Queue()
    shares = [requests[n::LOAD_PROCESSES] for n in range(LOAD_PROCESSES)]
    connection.close()  # a forked child must not inherit (and later close) the bench's database socket
    procs = [ctx.Process(target=_client, args=(port, share, results, CONCURRENCY // LOAD_PROCESSES))
             for share in shares]
    start = time.perf_counter()
    for p in procs:
        p.start()
    gathered = [results.get(timeout=600) for _ in procs]
    seconds = time.perf_counter() - start
    for p in procs:
        p.join()
    return Load(requests=len(requests), seconds=seconds, latencies=[t for lat, _ in gathered for t in lat],
                failures=sum(f for _, f in gathered))
