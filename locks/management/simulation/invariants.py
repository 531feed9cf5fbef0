"""The invariants a multi-worker run samples while it runs (DESIGN §5 "Proof"), and their graces.

Each sampler is a pure function of a `Snapshot` (what the portal believes, what the simulated locks really
hold, the open issues) returning the keys that break the invariant at that moment. A `Watch` turns moments
into findings: a key counts only when it is seen in two samples at least its grace apart, so a state the
engine is still in the middle of fixing (a worker halfway through a task, an event on its way) is not a
finding. The report counts distinct subjects (codes, lock codes, operations) per invariant.

No false positives, by construction:
- a code is "on the lock" when the simulated lock holds it — one being removed stays on the lock until the
  lock has let it go, and one being set is not on it until the lock has it;
- the simulated vendor sometimes lies on purpose (the `desync` fault: "done" when the lock did not); only a
  read-back can find that, so the code concerned is excused for one reconciliation period after the lie — or
  for good where no read can find it (a PIN in a slot of a lock that does not report PINs);
- a code or lock with an open issue that says so is flagged, not silent (lock-wide: `desync` for any code of
  the lock, `unmanaged_code` for the refs it lists; `late_unflagged` accepts any lock-wide issue).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from locks.conf import engine
from locks.models import (
    AccessCode,
    Activity,
    CodeStatus,
    CommandAction,
    CommandState,
    IssueKind,
    IssueStatus,
    LockCommand,
    LockIssue,
)
from portal.models import Tenant
from providers.models import ProviderAccount, SimulatedDevice

# (subject, version): the subject is what the report counts (a code, a lock's code, an operation); a new version
# of the subject (the code changed since) starts its grace again.
Key = tuple[Hashable, Hashable]

LATE_AFTER = timedelta(seconds=60)  # DESIGN §4: not confirmed by starts_at → an issue within a minute
OVERSTAY_AFTER = timedelta(minutes=30)  # "ends_at + a short grace": removals take a vendor round trip or two


def vendor_lie_grace() -> timedelta:
    """How long a vendor's lie may stand: until a reconciliation (every few hours) could have read it back."""
    return engine().reconcile_every + timedelta(minutes=30)


def graces() -> dict[str, timedelta]:
    """How long a broken state must persist (between two samples) before it is a finding."""
    return {
        "false_set": timedelta(minutes=2),
        "device_concurrent_ops": timedelta(0),
        "overstay_unflagged": timedelta(minutes=1),
        "late_unflagged": timedelta(minutes=1),
        # Codes typed at the keypad (or kept by a lying vendor) can only be found by reading the lock back.
        "orphan_codes": vendor_lie_grace(),
    }


@dataclass(frozen=True)
class CodeView:
    pk: int
    lock_id: int
    status: str
    pin: str
    starts_at: datetime | None
    ends_at: datetime | None
    vendor_code_ref: str
    updated_at: datetime


@dataclass(frozen=True)
class DeviceView:
    lock_id: int
    codes: dict[str, dict[str, Any]]  # what the lock really holds: {ref: {pin, code_id, status, external, …}}
    operations: list[dict[str, Any]]  # the vendor's operations: {id, code_id, state, desync, due_at, …}
    pin_readable: bool = True  # the lock reports its codes' PINs (a read can find a wrong PIN)


@dataclass(frozen=True)
class IssueView:
    lock_id: int
    code_id: int | None
    kind: str
    refs: frozenset[str] = frozenset()  # the refs an unmanaged_code issue lists


@dataclass
class Snapshot:
    now: datetime
    codes: list[CodeView]
    devices: list[DeviceView]
    issues: list[IssueView]
    removing_refs: dict[int, set[str]] = field(default_factory=dict)  # lock → refs a queued/sent removal targets
    clearing_locks: set[int] = field(default_factory=set)  # locks with a delete-all queued or in flight

    def __post_init__(self) -> None:
        self.code_by_pk = {code.pk: code for code in self.codes}
        self.codes_with_issue = {issue.code_id for issue in self.issues if issue.code_id is not None}
        self.locks_with_issue = {issue.lock_id for issue in self.issues if issue.code_id is None}
        self.desynced_locks = {issue.lock_id for issue in self.issues
                               if issue.code_id is None and issue.kind == IssueKind.DESYNC}
        self.unmanaged_refs: dict[int, set[str]] = {}
        for issue in self.issues:
            if issue.kind == IssueKind.UNMANAGED_CODE:
                self.unmanaged_refs.setdefault(issue.lock_id, set()).update(issue.refs)
        cutoff = self.now - vendor_lie_grace()
        self.lied_about = {
            op["code_id"] for device in self.devices for op in device.operations
            if op.get("desync") and op.get("state") == "succeeded" and op.get("code_id") is not None
            and (datetime.fromisoformat(op["due_at"]) >= cutoff or _unfindable(device, op))
        }

    def flagged(self, lock_id: int, ref: str, code_id: int | None) -> bool:
        return (code_id in self.codes_with_issue or lock_id in self.desynced_locks
                or ref in self.unmanaged_refs.get(lock_id, ()))


def _unfindable(device: DeviceView, op: dict[str, Any]) -> bool:
    """A lie no read can find: a new PIN the vendor called done on a lock that reports its slots but not their
    PINs, with the slot still held (by the old PIN). The portal shows such a code as vendor-acknowledged only."""
    return not device.pin_readable and op.get("action") in ("create", "update") and op.get("ref") in device.codes


# --------------------------------------------------------------------------- the samplers


def false_set(snapshot: Snapshot) -> set[Key]:
    """Codes the portal calls `set` that their lock does not hold (with that PIN)."""
    held: dict[int, set[str]] = {}
    for device in snapshot.devices:
        for item in device.codes.values():
            if item.get("code_id") is not None and item.get("status") in ("set", "scheduled"):
                held.setdefault(item["code_id"], set()).add(item["pin"])
    found: set[Key] = set()
    for code in snapshot.codes:
        if code.status != CodeStatus.SET or code.pin in held.get(code.pk, ()):
            continue
        if (code.pk in snapshot.codes_with_issue or code.lock_id in snapshot.desynced_locks
                or code.pk in snapshot.lied_about or code.lock_id in snapshot.clearing_locks):
            continue
        found.add((code.pk, code.updated_at))
    return found


def device_concurrent_ops(snapshot: Snapshot) -> set[Key]:
    """Operations pending on a simulated lock while another one is pending there too."""
    found: set[Key] = set()
    for device in snapshot.devices:
        pending = [op["id"] for op in device.operations if op.get("state") == "pending"]
        if len(pending) > 1:
            found.update((op_id, device.lock_id) for op_id in pending)
    return found


def overstay_unflagged(snapshot: Snapshot) -> set[Key]:
    """Codes still on a lock past ends_at + OVERSTAY_AFTER with no issue saying so."""
    found: set[Key] = set()
    for device in snapshot.devices:
        for ref, item in device.codes.items():
            code_id = item.get("code_id")
            if item.get("external") or code_id is None:
                continue
            code = snapshot.code_by_pk.get(code_id)
            ends_at = code.ends_at if code is not None else _dt(item.get("ends_at"))
            if ends_at is None or snapshot.now < ends_at + OVERSTAY_AFTER:
                continue
            if snapshot.flagged(device.lock_id, ref, code_id) or code_id in snapshot.lied_about:
                continue
            found.add((code_id, ref))
    return found


def late_unflagged(snapshot: Snapshot) -> set[Key]:
    """Codes past starts_at + LATE_AFTER, inside their window, not set, with no issue on them or their lock."""
    found: set[Key] = set()
    for code in snapshot.codes:
        if code.status not in (CodeStatus.UNSET, CodeStatus.SETTING, CodeStatus.FAILED):
            continue
        if code.starts_at is None or snapshot.now < code.starts_at + LATE_AFTER:
            continue
        if code.ends_at is not None and snapshot.now >= code.ends_at:
            continue
        if code.pk in snapshot.codes_with_issue or code.lock_id in snapshot.locks_with_issue:
            continue
        found.add((code.pk, code.starts_at))
    return found


def orphan_codes(snapshot: Snapshot) -> set[Key]:
    """Codes on a lock that Lockstep neither manages (no live code of ours has that ref, no removal targets it)
    nor flags."""
    managed: dict[int, set[str]] = {}
    for code in snapshot.codes:
        if code.status != CodeStatus.REMOVED and code.vendor_code_ref:
            managed.setdefault(code.lock_id, set()).add(code.vendor_code_ref)
    found: set[Key] = set()
    for device in snapshot.devices:
        ours = managed.get(device.lock_id, set()) | snapshot.removing_refs.get(device.lock_id, set())
        for ref, item in device.codes.items():
            if ref in ours or snapshot.flagged(device.lock_id, ref, item.get("code_id")):
                continue
            found.add(((device.lock_id, ref), item.get("pin")))
    return found


SAMPLERS: dict[str, Callable[[Snapshot], set[Key]]] = {
    "false_set": false_set,
    "device_concurrent_ops": device_concurrent_ops,
    "overstay_unflagged": overstay_unflagged,
    "late_unflagged": late_unflagged,
    "orphan_codes": orphan_codes,
}


@dataclass
class Watch:
    """Keys seen at samples; a key persisting across two samples at least `grace` apart is a finding.
    The report counts distinct subjects."""

    grace: timedelta
    seen: dict[Key, tuple[datetime, int]] = field(default_factory=dict)  # key → (first seen, samples)
    findings: set[Key] = field(default_factory=set)

    def observe(self, now: datetime, keys: Iterable[Key]) -> set[Key]:
        """Take one sample's keys; return the findings it confirmed for the first time."""
        self.seen = {key: (self.seen[key][0], self.seen[key][1] + 1) if key in self.seen else (now, 1)
                     for key in keys}
        needed = 1 if self.grace == timedelta(0) else 2
        confirmed = {key for key, (first, samples) in self.seen.items()
                     if samples >= needed and now - first >= self.grace}
        new = confirmed - self.findings
        self.findings.update(confirmed)
        return new

    def subjects(self) -> set[Hashable]:
        return {key[0] for key in self.findings}


class Sampler:
    """All the watches of a run."""

    def __init__(self) -> None:
        self.watches = {name: Watch(grace) for name, grace in graces().items()}
        self.samples = 0

    def sample(self, snapshot: Snapshot) -> dict[str, set[Key]]:
        """Take one snapshot; return the findings it confirmed for the first time, by invariant."""
        self.samples += 1
        new = {name: self.watches[name].observe(snapshot.now, sampler(snapshot))
               for name, sampler in SAMPLERS.items()}
        return {name: keys for name, keys in new.items() if keys}

    def counts(self) -> dict[str, int]:
        return {name: len(watch.subjects()) for name, watch in self.watches.items()}

    def examples(self, limit: int = 5) -> dict[str, list[str]]:
        return {name: [str(subject) for subject in sorted(watch.subjects(), key=str)[:limit]]
                for name, watch in self.watches.items() if watch.findings}


def dossier(snapshot: Snapshot, name: str, key: Key) -> dict[str, Any]:
    """What was known when a finding was confirmed, to trace it afterwards: the portal's view of the code, what
    its lock held, the simulated vendor's operations on it (pruned from the device after a few days), its
    commands and its history. PINs appear as they are in the simulation's own tables: this is a test fleet."""
    subject = key[0]
    code_id = subject if isinstance(subject, int) else None
    lock_id = subject[0] if isinstance(subject, tuple) else None
    code = snapshot.code_by_pk.get(code_id) if code_id is not None else None
    if code is not None:
        lock_id = code.lock_id
    device = next((device for device in snapshot.devices if device.lock_id == lock_id), None)
    commands = LockCommand.objects.filter(lock_id=lock_id or 0).order_by("id")
    history = Activity.objects.filter(lock_id=lock_id or 0).order_by("created_at", "id")
    if code_id is not None:
        commands, history = commands.filter(access_code_id=code_id), history.filter(access_code_id=code_id)
    return {
        "invariant": name, "key": [str(part) for part in key], "now": snapshot.now.isoformat(),
        "code": None if code is None else {**code.__dict__, "starts_at": str(code.starts_at),
                                           "ends_at": str(code.ends_at), "updated_at": str(code.updated_at)},
        "device_codes": {} if device is None else device.codes,
        "device_operations": [] if device is None else [
            op for op in device.operations if code_id is None or op.get("code_id") == code_id],
        "issues": [issue.__dict__ | {"refs": sorted(issue.refs)} for issue in snapshot.issues
                   if issue.lock_id == lock_id],
        "commands": [{field: str(value) for field, value in row.items()} for row in commands.values(
            "id", "access_code_id", "action", "state", "attempt", "vendor_ref", "target_ref", "sent_code_ref",
            "sent_at", "finished_at", "reason", "vendor_detail", "created_at")[:200]],
        "history": [f"{at.isoformat()} {verb}: {message}" for at, verb, message in history.values_list(
            "created_at", "verb", "message")[:400]],
    }


# --------------------------------------------------------------------------- taking a snapshot


def snapshot_take(*, tenant: Tenant, account: ProviderAccount, now: datetime) -> Snapshot:
    """One consistent read of the run's tenant (REPEATABLE READ on PostgreSQL: workers write meanwhile)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        codes = [
            CodeView(pk=code.pk, lock_id=code.lock_id, status=code.status, pin=code.pin, starts_at=code.starts_at,
                     ends_at=code.ends_at, vendor_code_ref=code.vendor_code_ref, updated_at=code.updated_at)
            for code in AccessCode.objects.filter(tenant=tenant).only(
                "pk", "lock_id", "status", "pin", "starts_at", "ends_at", "vendor_code_ref", "updated_at")
        ]
        lock_of_device = {device_id: (pk, readable) for device_id, pk, readable in account.locks.values_list(
            "vendor_device_id", "pk", "pin_readable")}
        devices = [
            DeviceView(lock_id=lock_of_device[device_id][0], codes=held, operations=operations,
                       pin_readable=lock_of_device[device_id][1])
            for device_id, held, operations in SimulatedDevice.objects.filter(account=account).values_list(
                "device_id", "codes", "operations") if device_id in lock_of_device
        ]
        issues = [
            IssueView(lock_id=lock_id, code_id=code_id, kind=kind, refs=frozenset(
                item.get("vendor_code_ref", "") for item in (data or {}).get("codes", []) if isinstance(item, dict)))
            for lock_id, code_id, kind, data in LockIssue.objects.filter(
                tenant=tenant, status=IssueStatus.OPEN).values_list("lock_id", "access_code_id", "kind", "data")
        ]
        removing: dict[int, set[str]] = {}
        clearing: set[int] = set()
        for lock_id, action, target_ref in LockCommand.objects.filter(
            tenant=tenant, state__in=[CommandState.QUEUED, CommandState.SENT],
            action__in=[CommandAction.REMOVE_CODE, CommandAction.DELETE_ALL],
        ).values_list("lock_id", "action", "target_ref"):
            if action == CommandAction.DELETE_ALL:
                clearing.add(lock_id)
            elif target_ref:
                removing.setdefault(lock_id, set()).add(target_ref)
    return Snapshot(now=now, codes=codes, devices=devices, issues=issues, removing_refs=removing,
                    clearing_locks=clearing)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
