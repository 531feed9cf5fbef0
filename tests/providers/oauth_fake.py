"""A fake OAuth vendor on 127.0.0.1 (never any other address): authorization, token and refresh endpoints
with expiring, rotating tokens, plus the few SmartThings API paths the tests drive.

Like a real vendor it rotates refresh tokens: spending one kills it, so a second refresh with the same
token is `invalid_grant`. `revoke_all()` makes every refresh fail (the user revoked the app). The
authorization endpoint answers at once with a redirect carrying a code and the state it was given, as
if the user had signed in and pressed "Allow". Tokens start with `prefix`, so leak tests can look for it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Issued:
    access: str
    refresh: str


@dataclass
class FakeOAuthVendor:
    client_id: str = "lockstep-client"
    client_secret: str = "SECRET-client-secret-5c1e9d"
    expires_in: int = 300
    prefix: str = "SECRET-oauth"
    echo_on_error: bool = False  # a careless vendor: repeats the request (refresh token) in its error text
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    live_refresh: set[str] = field(default_factory=set)
    live_access: dict[str, float] = field(default_factory=dict)  # token → expiry (time.time())
    issued: list[Issued] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    api_calls: list[tuple[str, str, str, Any]] = field(default_factory=list)  # method, path, bearer, body
    revoked: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, headers = fake.answer(self.command, self.path, dict(self.headers), raw)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json",
                                    "Content-Length": str(len(data)), "Connection": "close"}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> FakeOAuthVendor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def revoke_all(self) -> None:
        with self._lock:
            self.revoked = True
            self.live_refresh.clear()

    @property
    def refresh_grants(self) -> int:
        return self.grants.count("refresh_token")

    # --- behaviour
    def answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict]:
        parts = urlsplit(target)
        if parts.path == "/oauth/authorize" and method == "GET":
            return self._authorize(parse_qs(parts.query))
        if parts.path == "/oauth/token" and method == "POST":
            return self._token(headers, {k: v[0] for k, v in parse_qs(raw.decode()).items()})
        return self._api(method, parts.path, headers, raw)

    def _authorize(self, query: dict[str, list[str]]) -> tuple[int, Any, dict]:
        params = {k: v[0] for k, v in query.items()}
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        code = f"code-{next(self._serial)}"
        self.codes[code] = params
        location = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params.get("state", "")})
        return 302, None, {"Location": location}

    def _client_ok(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret

    def _issue(self) -> dict[str, Any]:
        n = next(self._serial)
        pair = Issued(f"{self.prefix}-access-{n:04d}-7d1f", f"{self.prefix}-refresh-{n:04d}-a93c")
        self.issued.append(pair)
        self.live_access[pair.access] = time.time() + self.expires_in
        self.live_refresh.add(pair.refresh)
        return {"access_token": pair.access, "refresh_token": pair.refresh, "token_type": "bearer",
                "expires_in": self.expires_in, "scope": "r:devices:* x:devices:*", "installed_app_id": "ia-77"}

    def _token(self, headers: dict[str, str], form: dict[str, str]) -> tuple[int, Any, dict]:
        with self._lock:
            grant = form.get("grant_type", "")
            self.grants.append(grant)
            if not self._client_ok(headers, form):
                return 401, {"error": "invalid_client"}, {}
            if grant == "authorization_code":
                asked = self.codes.pop(form.get("code", ""), None)
                if asked is None:
                    return 400, {"error": "invalid_grant"}, {}
                challenge = asked.get("code_challenge")
                if challenge:
                    verifier = form.get("code_verifier", "")
                    made = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                    if made != challenge:
                        return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}, {}
                return 200, self._issue(), {}
            if grant == "refresh_token":
                token = form.get("refresh_token", "")
                if self.revoked or token not in self.live_refresh:
                    words = f"refresh token {token} is not valid" if self.echo_on_error else "refresh token is not valid"
                    return 400, {"error": "invalid_grant", "error_description": words}, {}
                self.live_refresh.discard(token)  # rotation: spent
                return 200, self._issue(), {}
            return 400, {"error": "unsupported_grant_type"}, {}

    def _api(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict]:
        bearer = headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.loads(raw) if raw else None
        self.api_calls.append((method, path, bearer, body))
        if method == "POST" and path.endswith("/subscriptions"):
            source = body["sourceType"]
            key = {"DEVICE": "device", "CAPABILITY": "capability", "DEVICE_HEALTH": "deviceHealth"}[source]
            return 200, {"id": f"sub-{next(self._serial)}", "installedAppId": path.split("/")[-2],
                         "sourceType": source, key: body[key]}, {}
        if method == "DELETE" and path.endswith("/subscriptions"):
            return 200, {"count": 0}, {}
        if self.live_access.get(bearer, 0) <= time.time() and not bearer.startswith("lifecycle-"):
            return 401, {"error": {"code": "UnauthorizedError", "message": "token expired"}}, {}
        if path.endswith("/status"):
            slots = json.dumps({"1": "Cleaner"})
            return 200, {"components": {"main": {"lockCodes": {"lockCodes": {"value": slots},
                                                              "maxCodes": {"value": 8}}}}}, {}
        if path.endswith("/commands"):
            return 200, {"results": [{"id": "r-1", "status": "ACCEPTED"}]}, {}
        if path.endswith("/devices"):
            return 200, {"items": []}, {}
        return 404, {"error": {"code": "NotFound", "message": "no such path"}}, {}

    def commands(self) -> list[tuple[str, Any]]:
        """(bearer token, body) of every command POST."""
        return [(bearer, body) for method, path, bearer, body in self.api_calls
                if method == "POST" and path.endswith("/commands")]
