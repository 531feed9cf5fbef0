"""A new PIN for a code (DESIGN §4 "PINs", "Guests are told only what is true"): make before break.

A code whose holder has not been told its PIN simply takes the new one (an update on the lock; the guest
hears it with their code message). A guest who knows the PIN must never reach a door that has stopped
taking it before they know the new one. So where the guest was told and the old code is confirmed on the
door, the new PIN goes on beside it as a code of its own (`AccessCode.replaces`): the old keeps working;
the guest is told once every door holds the new PIN (portal/messages.py: the `code_changed` message waits
for that, as every message does); and only then is the old code removed (`code_guest_told`).

Where a door cannot hold a second code (the lock is full) or the old code is not working there anyway
(failed, or not programmed yet), that door's code takes the new PIN in place: there is nothing working to
keep. Either way a told guest's change is stamped `pin_changed_at`, which is what asks for the message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction

from locks import pins
from locks.activity import activity_record
from locks.codes import code_mark_guest_notified, pin_siblings, pin_split_flag, pins_choose
from locks.commands import code_send_new_pin
from locks.models import AccessCode, CodePurpose, CodeStatus, Lock
from locks.planning import code_program, code_remove, program_time
from locks.selectors import code_is_confirmed, lock_slot_holders

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser | None

GONE = (CodeStatus.REMOVING, CodeStatus.REMOVED)


@dataclass(frozen=True)
class DoorChange:
    code: AccessCode  # the code as it is now (the one the guest knows, if told)
    new_pin: str
    side_by_side: bool  # the old PIN keeps working until the guest is told the new one


@dataclass(frozen=True)
class PinChangePlan:
    told: bool  # the guest knows the current PIN: they will be told the new one, then the old goes
    doors: list[DoorChange]

    @property
    def pins(self) -> set[str]:
        return {door.new_pin for door in self.doors}


def code_current(code: AccessCode) -> AccessCode:
    """The code a change is about: the newest live code replacing `code` (a change not yet told), or `code`."""
    newer = (AccessCode.objects.select_related("lock", "tenant").filter(replaces=code).exclude(status__in=GONE)
             .order_by("-id").first())
    return code if newer is None else code_current(newer)


def _has_room(lock: Lock) -> bool:
    capacity = (lock.requirements or {}).get("max_active_codes")
    return capacity is None or len(lock_slot_holders(lock=lock)) < int(capacity)


def _keeps_working(member: AccessCode) -> bool:
    """The guest knows this code's PIN and it opens the door now (or at its start, preloaded): keep it until
    they know the new one — if the lock has a slot for the new code beside it."""
    return (member.guest_notified and member.purpose == CodePurpose.GUEST and member.booking_id is not None
            and code_is_confirmed(member) and _has_room(member.lock))


def pin_change_plan(code: AccessCode, *, pin: str | None = None) -> PinChangePlan:
    """What a new PIN for `code` (and its siblings on the booking's other doors) would do, with the PINs it
    would use; nothing is saved. Raises locks.pins.PinRejected for a chosen PIN that cannot go on, and
    NoPinAvailable when none can be generated."""
    code = code_current(code)
    group = [code, *pin_siblings(code)]
    told = any(member.guest_notified for member in group)
    # A told guest's new PIN must differ from the one they know on every door (the old stays on meanwhile).
    chosen = pins_choose(group, exclude={member.pin for member in group if member.pin} if told else (), pin=pin)
    return PinChangePlan(told=told, doors=[
        DoorChange(member, chosen[member.pk], side_by_side=told and _keeps_working(member)) for member in group])


@transaction.atomic
def code_change_pin(*, code: AccessCode, now: datetime, actor: Actor = None, pin: str | None = None) -> list[AccessCode]:
    """Give `code` and its siblings a new PIN (generated, or `pin`), make before break for a told guest.
    Returns the codes that now carry the new PIN, the one for `code`'s door first; the caller has checked
    that the code may change at all."""
    plan = pin_change_plan(code, pin=pin)
    split = len(plan.pins) > 1
    group = [door.code for door in plan.doors]
    key = f"booking-{group[0].booking_id}-{secrets.token_hex(4)}" if len(group) > 1 and not split else ""
    changed: list[AccessCode] = []
    for door in plan.doors:
        if door.side_by_side:
            changed.append(_replacement_create(door.code, pin=door.new_pin, key=key, now=now, actor=actor))
        else:
            changed.append(_change_in_place(door.code, pin=door.new_pin, key=key, told=plan.told, now=now,
                                            actor=actor))
    if split:
        pin_split_flag(changed, now=now)
    return changed


def _change_in_place(member: AccessCode, *, pin: str, key: str, told: bool, now: datetime,
                     actor: Actor) -> AccessCode:
    member.pin, member.guest_notified, member.common_code_key = pin, False, key
    member.pin_changed_at = now if told else member.pin_changed_at
    member.save(update_fields=["pin", "guest_notified", "common_code_key", "pin_changed_at", "updated_at"])
    activity_record(tenant_id=member.tenant_id, verb="pin.regenerated", now=now, code=member, actor=actor,
                    message=f"New PIN generated for {member.name!r}")
    code_send_new_pin(member, now=now, actor=actor)
    return member


def _replacement_create(old: AccessCode, *, pin: str, key: str, now: datetime, actor: Actor) -> AccessCode:
    new = AccessCode.objects.create(
        tenant_id=old.tenant_id, lock=old.lock, booking_id=old.booking_id, purpose=old.purpose,
        holder_name=old.holder_name, code_type=old.code_type, pin=pin, common_code_key=key,
        name=pins.name_beside(old.name, old.lock.requirements or {}),
        starts_at=old.starts_at, ends_at=old.ends_at,
        program_at=program_time(lock=old.lock, starts_at=old.starts_at, now=now),
        replaces=old, pin_changed_at=now,
    )
    activity_record(tenant_id=new.tenant_id, verb="pin.regenerated", now=now, code=new, actor=actor,
                    data={"replaces": old.pk},
                    message=f"New PIN for {new.name!r} goes on beside the one the guest knows, which keeps "
                    "working until the guest is told the new PIN")
    if new.program_at is not None and new.program_at <= now:
        code_program(code=new, now=now, actor=actor)
    return new


def code_guest_told(*, code: AccessCode, now: datetime) -> None:
    """The guest has been told `code`'s PIN (a message carrying it went out): record it, and take off the
    code it replaced — the guest no longer needs the old PIN, and nobody else should have it."""
    if not code.guest_notified:
        code_mark_guest_notified(code=code, actor=None, now=now)
    old = code.replaces
    while old is not None:
        old.refresh_from_db()
        if old.status not in GONE:
            code_remove(code=old, now=now, note="replaced: the guest was told the new PIN")
        old = old.replaces
