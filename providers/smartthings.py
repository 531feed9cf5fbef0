"""SmartThings adapter: lock codes through the `lockCodes` capability, outcomes through a webhook SmartApp.

Credentials (encrypted JSON on the ProviderAccount):
- `oauth`: the SmartApp's tokens, from "Connect" (OAuth code flow) or from its INSTALL/UPDATE lifecycle
  (V: "the 24-hour access token ... supplied after the INSTALL and UPDATE lifecycles" with a refresh
  token, smartapp-sdk-nodejs README); refreshed before each call by the engine (providers/oauth.py for
  endpoints and what is verified or assumed, locks/tokens.py for the locked refresh). `client_id` and
  `client_secret` are the SmartApp's registration.
- `token`: a personal access token, used only when the account is not connected.
- `public_key`: the SmartApp's RSA public key (PEM; an X.509 certificate PEM is accepted too), used to
  verify webhook signatures. It is never fetched: the SDK would download a certificate from
  key.smartthings.com for key ids that do not start with `/SmartThings` (smartapp-sdk-nodejs
  lib/util/authorizer.js); here the admin pastes that key instead, and tests never touch the network.
- `base_url` (optional): defaults to https://api.smartthings.com/v1, the documented REST base. The
  core SDK uses https://api.smartthings.com and versions through the Accept header
  (smartthings-core-sdk src/endpoint-client.ts); both reach the same endpoints.

How it maps (VENDORS.md §2):
- create/update → `setCode(slot, pin, name)`; delete → `deleteCode(slot)`; reload → `reloadAllCodes`.
  The commands endpoint answers ACCEPTED long before the lock acts, so the receipt is PENDING with
  `vendor_code_ref` = the slot and `vendor_ref` = "<slot>@<sent_at ISO>"; the outcome arrives as a
  `codeChanged` event ("2 set", "2 failed", …) or is read from the device status by the sweeper.
- Slots: `lockCodes` (a JSON string slot → name) and `maxCodes` from GET /devices/{id}/status. Slot 0
  is the master code and never used. A code keeps its slot; a new code takes the lowest free one.
- PINs cannot be read back (`pin_readable` False): `read_codes` reports slot and name only.

Webhook (a "webhook SmartApp"): the body is a lifecycle request. PING is answered with its challenge and
needs no signature (the SDK does the same, lib/smart-app.js handleHttpCallback). CONFIRMATION, INSTALL,
UPDATE, UNINSTALL and OAUTH_CALLBACK are answered by `webhook_reply`, which checks the signature itself
(the intake asks for a reply before it verifies) and answers 401 when it is bad. CONFIRMATION is answered
200 with our `targetUrl` [A: the shape of SmartThings' webhook-registration docs] and its
`confirmationUrl` is logged for the admin to open, as the SDK does (V: lib/smart-app.js; never fetched
here). INSTALL/UPDATE create the subscriptions (`_installed_app_subscribe`, shapes V in
smartthings-core-sdk src/endpoint/subscriptions.ts) with the lifecycle's token before answering
`{"installData": {}}` / `{"updateData": {}}` (V: lib/smart-app.js), and hand the tokens and the
subscriptions to the engine's keeper through the intake. EVENT carries
`eventData.events[]` and is stored and parsed; a delivery in the subscription shape, one
`{"event": {"eventType": "DEVICE_EVENT", "deviceEvent": {…}}}` without a lifecycle, is parsed the same
way (it was stored as "no events" and the "1 failed" in it was lost). Every lifecycle but PING must carry an IETF HTTP Signatures (draft)
`Authorization: Signature keyId=…,signature=…,headers="(request-target) digest date",algorithm="rsa-sha256"`
header. The signing string needs the request path, which the intake view passes to us in the header
**`x-lockstep-request-path`** (the raw path of the webhook URL, e.g. `/webhooks/smartthings/<uuid>/`).
The `Digest` must match SHA-256 of the raw body and `Date` must be within 5 minutes of now (the default
clock skew of the `http-signature` library the SDK uses). Replays inside that window are dropped by the
stored event id (WebhookEvent is unique per account and vendor event id).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.utils import timezone

from providers import oauth
from providers.base import (
    DeviceInfo,
    EventKind,
    ObservedCode,
    Outcome,
    Progress,
    Provider,
    ProviderError,
    Reason,
    Receipt,
    VendorEvent,
    WebhookReply,
    WebhookVerificationError,
)
from providers.http import REDACTED, VendorHttp

if TYPE_CHECKING:
    from locks.models import AccessCode, Lock, LockCommand
    from providers.models import ProviderAccount

logger = logging.getLogger(__name__)

COMPONENT = "main"
MASTER_SLOT = 0
DEFAULT_MAX_CODES = 30  # when the device does not report maxCodes
DEFAULT_CODE_LENGTHS = (4, 8)  # minCodeLength/maxCodeLength when the device does not say
MAX_DEVICE_PAGES = 50
SIGNATURE_MAX_AGE = timedelta(minutes=5)
REQUEST_PATH_HEADER = "x-lockstep-request-path"
# SmartApp subscriptions (INSTALL/UPDATE): what Lockstep listens to, and the per-app cap (VENDORS.md §2).
SUBSCRIBED_CAPABILITIES = ("lockCodes", "lock", "battery")
SUBSCRIPTION_LIMIT = 20
# "the 24-hour access token that is supplied after the INSTALL and UPDATE lifecycles" (smartapp-sdk-nodejs
# README); the lifecycle itself carries no expires_in.
INSTALL_TOKEN_LIFETIME = timedelta(hours=24)

# The commands endpoint's per-command status (core SDK devices.ts; VENDORS.md §2).
COMMAND_RESULT_PROGRESS: dict[str, Progress] = {
    "ACCEPTED": Progress.PENDING,
    "COMPLETED": Progress.DONE,
}
# A status the platform refused to dispatch: a vendor-side problem, transient.
COMMAND_RESULT_FAILED_REASON = Reason.VENDOR_ERROR

# SmartThings answers 409 for "invalid device state" (a command it cannot take now), not for a duplicate
# PIN: the lock reports duplicates later, as "N failed". So 409 is busy here, not duplicate_pin.
STATUS_OVERRIDES: dict[int, Reason] = {409: Reason.BUSY}

# codeChanged "<slot> <change>" (capability spec and Edge drivers, VENDORS.md §2).
CODE_CHANGE_KINDS: dict[str, EventKind] = {
    "set": EventKind.CODE_SET,
    "changed": EventKind.CODE_SET,
    "deleted": EventKind.CODE_REMOVED,
    "unset": EventKind.CODE_REMOVED,
    "failed": EventKind.CODE_FAILED,
    "renamed": EventKind.IGNORED,  # a name change only; reconciliation compares names
}

# lockCredentials/lockUsers commandResult.statusCode (Edge lock_utils constants, VENDORS.md §2).
# `occupied` means the index we addressed already holds a credential we did not know about: the lock and
# our picture of it disagree, which is what `desync` means (reconcile, or delete all and reprogram).
COMMAND_RESULT_REASONS: dict[str, Reason] = {
    "failure": Reason.NACK,
    "duplicate": Reason.DUPLICATE_PIN,
    "occupied": Reason.DESYNC,
    "invalidCommand": Reason.INVALID_PIN,
    "resourceExhausted": Reason.SLOTS_FULL,
    "busy": Reason.BUSY,
}

HEALTH_ONLINE: dict[str, bool | None] = {"ONLINE": True, "OFFLINE": False, "UNHEALTHY": False, "UNKNOWN": None}
HEALTH_EVENT_KINDS: dict[str, EventKind] = {
    "ONLINE": EventKind.DEVICE_ONLINE,
    "OFFLINE": EventKind.DEVICE_OFFLINE,
    "UNHEALTHY": EventKind.DEVICE_OFFLINE,
}

# Lifecycles answered directly, with the body the SDK answers (lib/smart-app.js _handleCallback).
LIFECYCLE_ACKS: dict[str, dict[str, Any]] = {
    "INSTALL": {"installData": {}},
    "UPDATE": {"updateData": {}},
    "UNINSTALL": {"uninstallData": {}},
    "OAUTH_CALLBACK": {"oAuthCallbackData": {}},
    "CONFIRMATION": {},
}

_SIGNATURE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_DUPLICATE_HINT = re.compile(r"duplicate", re.IGNORECASE)


def _error_word(body: Any) -> str:
    """SmartThings error bodies look like {"requestId": …, "error": {"code": "…", "message": …}}."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code") or "")
    return ""


def _error_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or "")
    return ""


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookVerificationError("body is not JSON") from exc


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _slot_names(status: dict[str, Any]) -> dict[str, str]:
    """lockCodes as {slot: name}; the attribute value is itself a JSON string."""
    raw = _attribute(status, "lockCodes", "lockCodes")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ProviderError(Reason.VENDOR_ERROR, "lockCodes attribute is not JSON") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProviderError(Reason.VENDOR_ERROR, "lockCodes attribute is not a slot map")
    return {str(slot): str(name) for slot, name in raw.items()}


def _attribute(status: dict[str, Any], capability: str, attribute: str) -> Any:
    try:
        return status["components"][COMPONENT][capability][attribute]["value"]
    except (KeyError, TypeError):
        return None


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class SmartThingsProvider(Provider):
    vendor = "smartthings"
    default_base_url = "https://api.smartthings.com/v1"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        token = str(self.credentials.get("token") or "")
        self.http = VendorHttp(
            vendor=self.vendor,
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self.timeout,
            token_source=oauth.token_source_for(account),
            secrets=(token,),
            error_word=_error_word,
            error_message=_error_message,
            status_reasons=STATUS_OVERRIDES,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.json(method, path, **kwargs)

    @staticmethod
    def _device_path(lock_or_id: Lock | str, suffix: str = "") -> str:
        device_id = lock_or_id if isinstance(lock_or_id, str) else lock_or_id.vendor_device_id
        return f"devices/{quote(device_id, safe='')}{suffix}"

    def _status(self, lock: Lock) -> dict[str, Any]:
        status = self._call("GET", self._device_path(lock, "/status"))
        if not isinstance(status, dict):
            raise ProviderError(Reason.VENDOR_ERROR, "device status is not an object")
        return status

    def _send(self, lock: Lock, command: str, arguments: list[Any], *, pin: str = "") -> tuple[Progress, str]:
        body = {
            "commands": [
                {"component": COMPONENT, "capability": "lockCodes", "command": command, "arguments": arguments}
            ]
        }
        answer = self._call("POST", self._device_path(lock, "/commands"), json=body, secrets=(pin,))
        results = answer.get("results") if isinstance(answer, dict) else None
        if not results or not isinstance(results[0], dict):
            raise ProviderError(Reason.VENDOR_ERROR, f"no command result for {command}")
        status = str(results[0].get("status") or "")
        if status in COMMAND_RESULT_PROGRESS:
            return COMMAND_RESULT_PROGRESS[status], status
        raise ProviderError(COMMAND_RESULT_FAILED_REASON, f"{command} was not dispatched: status {status or '?'}")

    def _summary(self, command: str, lock: Lock, **fields: Any) -> dict[str, Any]:
        return {"method": "POST", "path": f"/{self._device_path(lock, '/commands')}", "command": command, **fields}

    # --- connection and devices
    def check_connection(self) -> None:
        self._call("GET", "devices", params={"capability": "lockCodes"})

    def list_devices(self) -> list[DeviceInfo]:
        devices: list[dict[str, Any]] = []
        params: dict[str, Any] = {"capability": "lockCodes"}
        for _page in range(MAX_DEVICE_PAGES):
            answer = self._call("GET", "devices", params=params)
            if not isinstance(answer, dict):
                raise ProviderError(Reason.VENDOR_ERROR, "device list is not an object")
            devices.extend(item for item in answer.get("items") or [] if isinstance(item, dict))
            next_href = ((answer.get("_links") or {}).get("next") or {}).get("href")
            if not next_href:
                break
            params = dict(parse_qsl(urlsplit(next_href).query))
        return [self._device_info(device) for device in devices if device.get("deviceId")]

    def _device_info(self, device: dict[str, Any]) -> DeviceInfo:
        device_id = str(device["deviceId"])
        status = self._status_by_id(device_id)
        low = _int_or(_attribute(status, "lockCodes", "minCodeLength"), DEFAULT_CODE_LENGTHS[0])
        high = _int_or(_attribute(status, "lockCodes", "maxCodeLength"), DEFAULT_CODE_LENGTHS[1])
        requirements: dict[str, Any] = {"code_lengths": list(range(low, max(low, high) + 1)), "constraints": []}
        max_codes = _int_or(_attribute(status, "lockCodes", "maxCodes"), 0)
        if max_codes:
            requirements["max_active_codes"] = max_codes
        battery = _attribute(status, "battery", "battery")
        return DeviceInfo(
            vendor_device_id=device_id,
            name=str(device.get("label") or device.get("name") or device_id),
            model=str(device.get("name") or ""),
            requirements=requirements,
            native_scheduling=False,
            pin_readable=False,
            online=self._health(device_id),
            battery_level=_int_or(battery, 0) / 100 if battery is not None else None,
        )

    def _status_by_id(self, device_id: str) -> dict[str, Any]:
        status = self._call("GET", self._device_path(device_id, "/status"))
        return status if isinstance(status, dict) else {}

    def _health(self, device_id: str) -> bool | None:
        try:
            answer = self._call("GET", self._device_path(device_id, "/health"))
        except ProviderError as exc:
            if exc.status_code == 404:  # the SDK reports a missing health record as UNKNOWN
                return None
            raise
        state = str(answer.get("state") or "UNKNOWN") if isinstance(answer, dict) else "UNKNOWN"
        return HEALTH_ONLINE.get(state)

    # --- codes
    def create_code(self, lock: Lock, code: AccessCode) -> Receipt:
        return self._set_code(lock, code, "create")

    def update_code(self, lock: Lock, code: AccessCode) -> Receipt:
        return self._set_code(lock, code, "update")

    def _set_code(self, lock: Lock, code: AccessCode, action: str) -> Receipt:
        status = self._status(lock)
        slot = self._slot_for(lock, code, status)
        sent_at = timezone.now()
        progress, vendor_status = self._send(lock, "setCode", [slot, code.pin, code.name], pin=code.pin)
        return Receipt(
            progress=progress,
            vendor_ref=f"{slot}@{sent_at.isoformat()}",
            vendor_code_ref=str(slot),
            detail=f"setCode slot {slot}: {vendor_status}",
            request_summary=self._summary("setCode", lock, action=action, slot=slot, name=code.name, pin=REDACTED),
        )

    def _slot_for(self, lock: Lock, code: AccessCode, status: dict[str, Any]) -> int:
        """The code's own slot if it still has it (or it is free); else the lowest free slot."""
        taken = _slot_names(status)
        current = code.vendor_code_ref
        if current.isdigit() and int(current) != MASTER_SLOT and taken.get(current, code.name) == code.name:
            return int(current)
        max_codes = _int_or(
            _attribute(status, "lockCodes", "maxCodes"),
            _int_or((lock.requirements or {}).get("max_active_codes"), DEFAULT_MAX_CODES),
        )
        for slot in range(MASTER_SLOT + 1, max_codes + 1):
            if str(slot) not in taken:
                return slot
        raise ProviderError(Reason.SLOTS_FULL, f"all {max_codes} code slots on the lock are in use")

    def delete_code(self, lock: Lock, code: AccessCode) -> Receipt:
        slot = code.vendor_code_ref
        if not slot.isdigit():
            # Never got a slot back (e.g. a crash after sending): find it by name, if it is there at all.
            slot = next((s for s, name in _slot_names(self._status(lock)).items() if name == code.name), "")
            if not slot:
                return Receipt(progress=Progress.DONE, detail="no slot holds this code; nothing to delete")
        return self._delete_slot(lock, int(slot))

    def delete_observed_code(self, lock: Lock, vendor_code_ref: str) -> Receipt:
        if not vendor_code_ref.isdigit() or int(vendor_code_ref) == MASTER_SLOT:
            raise ProviderError(Reason.UNSUPPORTED, f"slot {vendor_code_ref!r} cannot be deleted")
        return self._delete_slot(lock, int(vendor_code_ref))

    def _delete_slot(self, lock: Lock, slot: int) -> Receipt:
        sent_at = timezone.now()
        progress, vendor_status = self._send(lock, "deleteCode", [slot])
        return Receipt(
            progress=progress,
            vendor_ref=f"{slot}@{sent_at.isoformat()}",
            vendor_code_ref=str(slot),
            detail=f"deleteCode slot {slot}: {vendor_status}",
            request_summary=self._summary("deleteCode", lock, slot=slot),
        )

    def reload_codes(self, lock: Lock) -> Receipt:
        sent_at = timezone.now()
        progress, vendor_status = self._send(lock, "reloadAllCodes", [])
        return Receipt(
            progress=progress,
            vendor_ref=f"reload@{sent_at.isoformat()}",
            detail=f"reloadAllCodes: {vendor_status}",
            request_summary=self._summary("reloadAllCodes", lock),
        )

    def command_status(self, lock: Lock, command: LockCommand) -> Outcome:
        """What the device status says about a command in flight (the sweeper's poll).

        create/update: our name in our slot → DONE; delete: the slot is empty → DONE; else PENDING (a
        lock that never answers is timed out by the sweeper, not guessed at here).
        """
        status = self._status(lock)
        slots = _slot_names(status)
        slot = command.vendor_ref.split("@", 1)[0]
        if command.action == "reload_codes":
            done = _attribute(status, "lockCodes", "scanCodes") != "Scanning"
            return Outcome(progress=Progress.DONE if done else Progress.PENDING, detail=f"{len(slots)} codes")
        if command.action == "read_codes":
            return Outcome(progress=Progress.DONE)
        if not slot.isdigit() and command.access_code is not None:
            slot = command.access_code.vendor_code_ref
        if command.action in ("delete", "remove_code"):
            if slot not in slots:
                return Outcome(progress=Progress.DONE, vendor_code_ref=slot, detail=f"slot {slot} is empty")
            return Outcome(progress=Progress.PENDING, vendor_code_ref=slot, detail=f"slot {slot} still holds a code")
        name = command.access_code.name if command.access_code is not None else None
        if slot in slots and slots[slot] == name:
            return Outcome(progress=Progress.DONE, vendor_code_ref=slot, detail=f"slot {slot} holds {name!r}")
        return Outcome(progress=Progress.PENDING, vendor_code_ref=slot, detail=f"slot {slot} not confirmed yet")

    def read_codes(self, lock: Lock) -> list[ObservedCode] | None:
        slots = _slot_names(self._status(lock))
        return [
            ObservedCode(vendor_code_ref=slot, name=name, pin=None)
            for slot, name in sorted(slots.items(), key=lambda item: _int_or(item[0], 0))
            if slot != str(MASTER_SLOT)
        ]

    # --- webhooks
    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        payload = _parse_json(body)
        if isinstance(payload, dict) and payload.get("lifecycle") == "PING":
            return  # PING carries no secret and is answered with its own challenge, as the SDK does
        lowered = _lower_headers(headers)
        params = self._signature_params(lowered.get("authorization", ""))
        signed_headers = params.get("headers", "date").split()
        for required in ("(request-target)", "digest", "date"):
            if required not in signed_headers:
                raise WebhookVerificationError(f"signature does not cover {required}")
        self._check_digest(body, lowered.get("digest", ""))
        self._check_date(lowered.get("date", ""))
        path = lowered.get(REQUEST_PATH_HEADER, "")
        if not path:
            raise WebhookVerificationError(f"the intake view did not pass {REQUEST_PATH_HEADER}")
        lines = []
        for name in signed_headers:
            if name == "(request-target)":
                lines.append(f"(request-target): post {path}")
            elif name in lowered:
                lines.append(f"{name}: {lowered[name]}")
            else:
                raise WebhookVerificationError(f"signed header {name} is missing")
        try:
            signature = base64.b64decode(params.get("signature", ""), validate=True)
        except ValueError as exc:
            raise WebhookVerificationError("signature is not base64") from exc
        try:
            self._public_key().verify(
                signature, "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as exc:
            raise WebhookVerificationError("signature does not match") from exc

    @staticmethod
    def _signature_params(authorization: str) -> dict[str, str]:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "signature":
            raise WebhookVerificationError("no HTTP signature in Authorization")
        params = dict(_SIGNATURE_PARAM.findall(rest))
        if params.get("algorithm", "").lower() != "rsa-sha256":
            raise WebhookVerificationError("unsupported signature algorithm")
        if not params.get("signature"):
            raise WebhookVerificationError("empty signature")
        return params

    @staticmethod
    def _check_digest(body: bytes, digest_header: str) -> None:
        expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
        digests = dict(part.strip().split("=", 1) for part in digest_header.split(",") if "=" in part)
        if digests.get("SHA-256") != expected and digests.get("sha-256") != expected:
            raise WebhookVerificationError("Digest does not match the body")

    @staticmethod
    def _check_date(date_header: str) -> None:
        try:
            sent = parsedate_to_datetime(date_header)
        except (TypeError, ValueError) as exc:
            raise WebhookVerificationError("Date header missing or unreadable") from exc
        if sent.tzinfo is None:
            raise WebhookVerificationError("Date header has no zone")
        if abs(timezone.now() - sent) > SIGNATURE_MAX_AGE:
            raise WebhookVerificationError("Date header is stale")

    def _public_key(self) -> rsa.RSAPublicKey:
        pem = str(self.credentials.get("public_key") or "").encode()
        if not pem:
            raise WebhookVerificationError("the account has no SmartApp public key")
        try:
            if b"CERTIFICATE" in pem:
                key: object = x509.load_pem_x509_certificate(pem).public_key()
            else:
                key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise WebhookVerificationError("the stored SmartApp public key is not a PEM key") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookVerificationError("the stored SmartApp public key is not RSA")
        return key

    def webhook_reply(self, body: bytes, headers: Mapping[str, str]) -> WebhookReply | None:
        payload = _parse_json(body)
        lifecycle = payload.get("lifecycle") if isinstance(payload, dict) else None
        if lifecycle == "PING":
            challenge = (payload.get("pingData") or {}).get("challenge", "")
            return WebhookReply(status=200, body={"pingData": {"challenge": challenge}})
        if lifecycle not in LIFECYCLE_ACKS:
            return None
        # Answered instead of stored, so possibly before the intake verifies: check the signature here.
        try:
            self.verify_webhook(body, headers)
        except WebhookVerificationError as exc:
            return WebhookReply(status=401, body={"error": str(exc)})
        if lifecycle == "CONFIRMATION":
            url = (payload.get("confirmationData") or {}).get("confirmationUrl", "")
            logger.info("SmartThings CONFIRMATION for account %s: open %s to enable events", self.account.pk, url)
            path = _lower_headers(headers).get(REQUEST_PATH_HEADER, "")
            return WebhookReply(status=200, body={"targetUrl": f"{settings.PUBLIC_BASE_URL}{path}"})
        if lifecycle in ("INSTALL", "UPDATE"):
            installed = self._installed_app_subscribe(payload, lifecycle)
            return WebhookReply(status=200, body=LIFECYCLE_ACKS[lifecycle], installed=installed)
        return WebhookReply(status=200, body=LIFECYCLE_ACKS[lifecycle])

    # --- SmartApp subscriptions (INSTALL / UPDATE)
    def _installed_app_subscribe(self, payload: dict[str, Any], lifecycle: str) -> oauth.InstalledApp:
        """Create the subscriptions Lockstep needs with the lifecycle's own token, as the SDK's
        installed/updated handlers do; UPDATE first deletes the old ones (the SDK's `subscriptions.delete()`).

        Per selected device: lockCodes, lock and battery (DEVICE subscriptions, one per capability, SDK
        `subscribeToDevices`), plus one DEVICE_HEALTH subscription for those devices (`deviceHealth.deviceIds`,
        at most 20, core SDK DeviceHealthDetail). SmartThings allows 20 subscriptions per installed app
        (VENDORS.md §2): past that, the three capabilities are subscribed location-wide (CAPABILITY).
        """
        data = payload.get(f"{lifecycle.lower()}Data") or {}
        app = data.get("installedApp") or {}
        app_id = str(app.get("installedAppId") or "")
        auth_token = str(data.get("authToken") or "")
        if not app_id or not auth_token:
            raise ProviderError(Reason.VENDOR_ERROR, f"{lifecycle} without installedAppId or authToken")
        refresh = str(data.get("refreshToken") or "")
        http = VendorHttp(
            vendor=self.vendor, base_url=self.base_url, timeout=self.timeout, secrets=(auth_token, refresh),
            headers={"Authorization": f"Bearer {auth_token}", "Accept": "application/json"},
            error_word=_error_word, error_message=_error_message,
        )
        path = f"installedapps/{quote(app_id, safe='')}/subscriptions"
        if lifecycle == "UPDATE":
            http.request("DELETE", path)
        made = [_subscription_summary(http.json("POST", path, json=body))
                for body in subscription_bodies(_selected_devices(app), str(app.get("locationId") or ""))]
        token = (
            oauth.TokenSet(access_token=auth_token, refresh_token=refresh, installed_app_id=app_id,
                           expires_at=timezone.now() + INSTALL_TOKEN_LIFETIME)
            if refresh else None
        )
        return oauth.InstalledApp(installed_app_id=app_id, token=token, subscriptions=made)

    def webhook_event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        """One event: its eventId. A batch: a digest of its sorted event ids (fits the column, stable)."""
        ids = sorted({event.vendor_event_id for event in self.parse_webhook(body, headers)})
        if len(ids) <= 1:
            return ids[0] if ids else ""
        return "batch:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        payload = _parse_json(body)
        if not isinstance(payload, dict):
            raise WebhookVerificationError("body is not a lifecycle object")
        lifecycle = payload.get("lifecycle")
        if lifecycle == "CONFIRMATION":
            data = payload.get("confirmationData") or {}
            return [
                VendorEvent(
                    vendor_event_id=f"confirmation:{data.get('appId', '')}",
                    kind=EventKind.IGNORED,
                    detail=f"Open {data.get('confirmationUrl', '')} to confirm the webhook",
                    raw_type="CONFIRMATION",
                )
            ]
        if lifecycle == "EVENT":
            items = (payload.get("eventData") or {}).get("events") or []
        elif lifecycle is None and isinstance(payload.get("event"), dict):
            items = [payload["event"]]  # the subscription shape: one event, no lifecycle envelope
        else:
            return []
        events: list[VendorEvent] = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                events.extend(self._parse_event(item))
        return events

    def _parse_event(self, item: dict[str, Any]) -> list[VendorEvent]:
        occurred_at = _parse_time(item.get("eventTime"))
        event_type = str(item.get("eventType") or "")
        if event_type == "DEVICE_HEALTH_EVENT":
            health = item.get("deviceHealthEvent") or {}
            state = str(health.get("status") or "")
            return [
                VendorEvent(
                    vendor_event_id=str(health.get("eventId") or ""),
                    kind=HEALTH_EVENT_KINDS.get(state, EventKind.IGNORED),
                    vendor_device_id=str(health.get("deviceId") or ""),
                    occurred_at=occurred_at,
                    detail=f"health {state} {health.get('reason') or ''}".strip(),
                    raw_type=event_type,
                )
            ]
        if event_type != "DEVICE_EVENT":
            return [VendorEvent(vendor_event_id="", kind=EventKind.IGNORED, occurred_at=occurred_at, raw_type=event_type)]
        device_event = item.get("deviceEvent") or {}
        base: dict[str, Any] = {
            "vendor_event_id": str(device_event.get("eventId") or ""),
            "vendor_device_id": str(device_event.get("deviceId") or ""),
            "occurred_at": occurred_at,
            "raw_type": f"{device_event.get('capability')}.{device_event.get('attribute')}",
        }
        key = (str(device_event.get("capability")), str(device_event.get("attribute")))
        parser = DEVICE_EVENT_PARSERS.get(key)
        if parser is None:
            return [VendorEvent(**base, kind=EventKind.IGNORED, detail=".".join(key))]
        return [VendorEvent(**base, **parser(device_event.get("value"), device_event.get("data")))]


def _selected_devices(app: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(deviceId, componentId) of every device the user selected in the SmartApp's configuration."""
    devices: list[tuple[str, str]] = []
    for entries in (app.get("config") or {}).values():
        for entry in entries or []:
            device = (entry or {}).get("deviceConfig") if isinstance(entry, dict) else None
            if isinstance(device, dict) and device.get("deviceId"):
                pair = (str(device["deviceId"]), str(device.get("componentId") or COMPONENT))
                if pair not in devices:
                    devices.append(pair)
    return devices


def subscription_bodies(devices: list[tuple[str, str]], location_id: str) -> list[dict[str, Any]]:
    """The POST /installedapps/{id}/subscriptions bodies (shapes of smartthings-core-sdk subscriptions.ts)."""
    if not devices:
        return []
    bodies: list[dict[str, Any]] = []
    if len(devices) * len(SUBSCRIBED_CAPABILITIES) + 1 <= SUBSCRIPTION_LIMIT:
        for index, (device_id, component) in enumerate(devices):
            for capability in SUBSCRIBED_CAPABILITIES:
                bodies.append({"sourceType": "DEVICE", "device": {
                    "deviceId": device_id, "componentId": component, "capability": capability, "attribute": "*",
                    "value": "*", "stateChangeOnly": True, "subscriptionName": f"{capability}_{index}"}})
    else:
        for capability in SUBSCRIBED_CAPABILITIES:
            bodies.append({"sourceType": "CAPABILITY", "capability": {
                "locationId": location_id, "capability": capability, "attribute": "*", "value": "*",
                "stateChangeOnly": True, "subscriptionName": f"{capability}_all"}})
    bodies.append({"sourceType": "DEVICE_HEALTH", "deviceHealth": {
        "deviceIds": [device_id for device_id, _ in devices][:SUBSCRIPTION_LIMIT], "subscriptionName": "health"}})
    return bodies


def _subscription_summary(answer: Any) -> dict[str, Any]:
    """What the account page shows of a subscription: never a token, only what it listens to."""
    answer = answer if isinstance(answer, dict) else {}
    source = str(answer.get("sourceType") or "")
    detail = answer.get({"DEVICE": "device", "CAPABILITY": "capability",
                         "DEVICE_HEALTH": "deviceHealth"}.get(source, "")) or {}
    return {
        "id": str(answer.get("id") or ""),
        "source": source,
        "device_id": str(detail.get("deviceId") or ""),
        "capability": str(detail.get("capability") or ("DeviceHealth" if source == "DEVICE_HEALTH" else "")),
        "name": str(detail.get("subscriptionName") or ""),
    }


def _code_changed(value: Any, data: Any) -> dict[str, Any]:
    value = str(value or "")
    slot, _, change = value.partition(" ")
    if slot == "all" and change == "deleted":
        return {"kind": EventKind.CODES_CLEARED, "detail": value}
    kind = CODE_CHANGE_KINDS.get(change)
    if kind is None or not slot.isdigit():
        return {"kind": EventKind.IGNORED, "detail": f"codeChanged {value!r}"}
    if int(slot) == MASTER_SLOT:
        return {"kind": EventKind.IGNORED, "detail": "master code changed"}
    fields: dict[str, Any] = {"kind": kind, "vendor_code_ref": slot, "detail": f"codeChanged {value}"}
    if kind == EventKind.CODE_FAILED:
        # "N failed": the lock rejected a code and names slot N. Only the engine knows which slot is in
        # flight (one command per lock): N is another slot → our PIN clashes with the one held in N
        # (duplicate_pin, clash N); N is our own slot → the lock refused it (nack, retried). So slot N
        # goes out as vendor_code_ref and clash_code_ref stays empty: filling it here would make the
        # engine read an own-slot refusal as a duplicate and regenerate PINs without end.
        duplicate = bool(_DUPLICATE_HINT.search(json.dumps(data))) if data else False
        fields["reason"] = Reason.DUPLICATE_PIN if duplicate else Reason.NACK
    return fields


def _lock_codes_snapshot(value: Any, data: Any) -> dict[str, Any]:
    """The whole slot map; never a change of its own. The Edge drivers send an empty map `{}` at the start
    of every code reload (ours included) and after a wipe, whose per-slot "N deleted" events (or "all
    deleted") carry the change; reading `{}` as a wipe made every reload ask for a reconciliation, whose
    read asked for a reload: a refresh storm (SmartThingsEdgeDrivers PR 567)."""
    empty = value in ("{}", {}, "")
    return {"kind": EventKind.IGNORED, "detail": "lockCodes emptied (a reload starts)" if empty else "lockCodes snapshot"}


def _command_result(value: Any, data: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = {}
    if not isinstance(value, dict):
        value = {}
    status = str(value.get("statusCode") or "")
    index = value.get("credentialIndex", value.get("userIndex"))
    ref = str(index) if index is not None else ""
    detail = f"{value.get('commandName', '?')}: {status or '?'}"
    if status == "success":
        return {"kind": EventKind.COMMAND_SUCCEEDED, "vendor_code_ref": ref, "detail": detail}
    return {
        "kind": EventKind.COMMAND_FAILED,
        "vendor_code_ref": ref,
        "reason": COMMAND_RESULT_REASONS.get(status, Reason.VENDOR_ERROR),
        "detail": detail,
    }


def _lock_state(value: Any, data: Any) -> dict[str, Any]:
    """The `lock` capability's `lock` attribute: "unlocked" with `data: {method: "keypad", codeId, codeName}`
    names the slot whose code opened the door (capability schema, SmartThingsEdgeDrivers
    lua_libs st/capabilities/generated/lock.lua). Any other state or method is no guest's news."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = {}
    data = data if isinstance(data, dict) else {}
    slot = str(data.get("codeId") or "")
    if value == "unlocked" and slot and slot != "0":  # slot 0 is the master code
        return {"kind": EventKind.CODE_USED, "vendor_code_ref": slot, "detail": f"unlocked ({data.get('method') or 'keypad'})"}
    return {"kind": EventKind.IGNORED, "detail": f"lock {value}"}


def _battery(value: Any, data: Any) -> dict[str, Any]:
    return {"kind": EventKind.BATTERY, "battery_level": _int_or(value, 0) / 100}


# (capability, attribute) of a DEVICE_EVENT → its VendorEvent fields; anything else is stored, ignored.
DEVICE_EVENT_PARSERS: dict[tuple[str, str], Callable[[Any, Any], dict[str, Any]]] = {
    ("lockCodes", "codeChanged"): _code_changed,
    ("lockCodes", "lockCodes"): _lock_codes_snapshot,
    ("lockCredentials", "commandResult"): _command_result,
    ("lockUsers", "commandResult"): _command_result,
    ("battery", "battery"): _battery,
    ("lock", "lock"): _lock_state,
}
