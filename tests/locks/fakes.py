"""A small scripted vendor for engine tests: a Provider whose answers the test decides.

`FakeCloud` is the vendor's state (codes per device, calls made, scripted answers); every FakeProvider
instance the engine builds talks to the one cloud installed by the `cloud` fixture.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from providers.base import (
    EventKind,
    ObservedCode,
    Outcome,
    Progress,
    Provider,
    Receipt,
    VendorEvent,
    WebhookVerificationError,
)


@dataclass
class Call:
    action: str
    device: str
    code_id: int | None
    pin: str = ""
    ref: str = ""


@dataclass
class FakeCloud:
    mode: Progress = Progress.DONE  # how create/update/delete answer by default
    codes: dict[str, dict[str, ObservedCode]] = field(default_factory=dict)  # device → ref → code
    calls: list[Call] = field(default_factory=list)
    script: dict[str, list[Any]] = field(default_factory=dict)  # action → answers (Receipt/ProviderError)
    statuses: dict[str, Outcome] = field(default_factory=dict)  # vendor_ref → what command_status says
    readable: bool = True
    applied: dict[str, tuple[str, str, ObservedCode | None]] = field(default_factory=dict)  # ref → pending op
    counter: int = 0
    slot_of: dict[int, str] = field(default_factory=dict)  # code id → slot
    # Run while the next create/update/delete is with the vendor (before its answer reaches the engine).
    meanwhile: list[Callable[[], None]] = field(default_factory=list)

    def answer(self, action: str, answer: Any) -> None:
        self.script.setdefault(action, []).append(answer)

    def sent(self, action: str | None = None) -> list[Call]:
        return [c for c in self.calls if action is None or c.action == action]

    def _next(self, action: str) -> Any:
        answers = self.script.get(action) or []
        return answers.pop(0) if answers else None

    def _op(self, action: str, lock: Any, code: Any) -> Receipt:
        self.counter += 1
        ref = f"cmd-{self.counter}"
        slot = self.slot_of.setdefault(code.pk, f"slot-{code.pk}")
        self.calls.append(Call(action, lock.vendor_device_id, code.pk, code.pin, ref))
        while self.meanwhile:
            self.meanwhile.pop(0)()
        scripted = self._next(action)
        if isinstance(scripted, Exception):
            raise scripted
        progress = scripted if isinstance(scripted, Progress) else self.mode
        device = self.codes.setdefault(lock.vendor_device_id, {})
        chosen = "" if code.pin or action == "delete" else f"7{code.pk % 10}3916"  # the lock picks a PIN
        observed = None if action == "delete" else ObservedCode(
            slot, name=code.name, pin=code.pin or chosen,
            starts_at=code.starts_at if lock.native_scheduling else None,
            ends_at=code.ends_at if lock.native_scheduling else None)
        if progress == Progress.DONE:
            self._apply(device, slot, observed)
        else:
            self.applied[ref] = (lock.vendor_device_id, slot, observed)
        return Receipt(progress, vendor_ref=ref, vendor_code_ref=slot, pin=chosen,
                       request_summary={"action": action})

    def _apply(self, device: dict[str, ObservedCode], slot: str, observed: ObservedCode | None) -> None:
        if observed is None:
            device.pop(slot, None)
        else:
            device[slot] = observed

    def finish(self, ref: str) -> None:
        """The lock does what a pending command asked (the webhook may or may not tell us)."""
        device_id, slot, observed = self.applied.pop(ref)
        self._apply(self.codes.setdefault(device_id, {}), slot, observed)
        self.statuses[ref] = Outcome(Progress.DONE, vendor_code_ref=slot)


class FakeProvider(Provider):
    vendor = "simulator"
    cloud: ClassVar[FakeCloud] = FakeCloud()

    def check_connection(self) -> None:
        return None

    def list_devices(self) -> list:
        return []

    def create_code(self, lock: Any, code: Any) -> Receipt:
        return self.cloud._op("create", lock, code)

    def update_code(self, lock: Any, code: Any) -> Receipt:
        return self.cloud._op("update", lock, code)

    def delete_code(self, lock: Any, code: Any) -> Receipt:
        return self.cloud._op("delete", lock, code)

    def command_status(self, lock: Any, command: Any) -> Outcome:
        self.cloud.calls.append(Call("status", lock.vendor_device_id, command.access_code_id, ref=command.vendor_ref))
        return self.cloud.statuses.get(command.vendor_ref, Outcome(Progress.PENDING))

    def read_codes(self, lock: Any) -> list[ObservedCode] | None:
        self.cloud.calls.append(Call("read", lock.vendor_device_id, None))
        if not self.cloud.readable:
            return None
        return list(self.cloud.codes.get(lock.vendor_device_id, {}).values())

    def delete_observed_code(self, lock: Any, vendor_code_ref: str) -> Receipt:
        self.cloud.calls.append(Call("delete_observed", lock.vendor_device_id, None, ref=vendor_code_ref))
        self.cloud.codes.get(lock.vendor_device_id, {}).pop(vendor_code_ref, None)
        return Receipt(Progress.DONE, vendor_code_ref=vendor_code_ref)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        signature = headers.get("x-fake-signature", "")
        if not signature:
            raise WebhookVerificationError("unsigned")
        if not hmac.compare_digest(signature, sign(self.webhook_secret, body)):
            raise WebhookVerificationError("bad signature")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[VendorEvent]:
        data = json.loads(body)
        return [
            VendorEvent(
                vendor_event_id=f"{data['id']}:{n}", kind=EventKind(item["kind"]),
                vendor_device_id=item.get("device", ""), vendor_ref=item.get("ref", ""),
                vendor_code_ref=item.get("code_ref", ""), reason=item.get("reason", ""),
                clash_code_ref=item.get("clash", ""), battery_level=item.get("battery"), pin=item.get("pin"),
                occurred_at=datetime.fromisoformat(item["at"]) if item.get("at") else None,
            )
            for n, item in enumerate(data["events"])
        ]

    def webhook_event_id(self, body: bytes, headers: Mapping[str, str]) -> str:
        return str(json.loads(body)["id"])


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
