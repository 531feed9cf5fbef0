"""Codes for people who are not guests — cleaners, maintenance, owners, staff (DESIGN §3 AccessCode purposes).

Staff give a person a code on one lock or on every lock of a property (one PIN on every door where the
locks allow it), ongoing or for a window. The codes have no booking but live the same life as a guest's:
`locks.planning` programs them through each lock's queue (ongoing codes now; time-bound ones at the
just-in-time or native-preload lead before their start), edits are pushed as updates, and removal deletes
them from the lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from locks import pins
from locks.activity import activity_record
from locks.codes import code_new_pin, fit_name, live_pins, lock_chooses_pin, pin_siblings
from locks.commands import code_send_new_pin
from locks.models import PEOPLE_PURPOSES, AccessCode, CodeStatus, CodeType, Lock
from locks.planning import (
    code_follow_window,
    code_program,
    code_remove,
    pins_for_locks,
    program_time,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from portal.models import Property

    Actor = AbstractBaseUser | AnonymousUser | None

HOLDER_NAME_MAX = 120


def _check_window(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (starts_at is None) != (ends_at is None):
        errors["ends_at" if ends_at is None else "starts_at"] = (
            "A time-bound code needs both a start and an end; leave both empty for an ongoing code.")
    elif starts_at is not None and ends_at is not None:
        if ends_at <= starts_at:
            errors["ends_at"] = "The end must be after the start."
        elif ends_at <= now:
            errors["ends_at"] = "The end is already past."
    return errors


def _check_holder(holder_name: str) -> dict[str, str]:
    if not holder_name.strip():
        return {"holder_name": "Say who the code is for."}
    if len(holder_name.strip()) > HOLDER_NAME_MAX:
        return {"holder_name": f"At most {HOLDER_NAME_MAX} characters."}
    return {}


def _check_pin(pin: str, locks: Sequence[Lock], *, exclude: Sequence[AccessCode] = ()) -> dict[str, str]:
    """A PIN a person chose, against every lock's rules and every PIN live on it (unmanaged ones too)."""
    skip = {code.lock_id: code for code in exclude}
    for lock in locks:
        if lock_chooses_pin(lock):
            return {"pin": f"{lock.name} chooses its own PINs; leave the PIN empty."}
        try:
            pins.assert_pin_usable(pin, lock.requirements or {}, live_pins(lock, exclude_code=skip.get(lock.pk)))
        except pins.PinRejected as exc:
            where = f" ({lock.name})" if len(locks) > 1 else ""
            return {"pin": " ".join(exc.errors) + where}
    return {}


def _locks_for(lock: Lock | None, prop: Property | None) -> list[Lock]:
    if (lock is None) == (prop is None):
        raise ValidationError("Give the code one lock or one property.")
    if lock is not None:
        if not lock.managed or lock.property_id is None:
            raise ValidationError({"lock": "Only a lock placed in a property can hold codes."})
        if lock.property is not None and lock.property.archived_at is not None:
            raise ValidationError({"lock": "This lock's property is archived."})
        return [lock]
    assert prop is not None
    if prop.archived_at is not None:
        raise ValidationError("An archived property gets no new codes.")
    locks = list(Lock.objects.filter(property=prop, managed=True).order_by("id"))
    if not locks:
        raise ValidationError("This property has no locks yet.")
    return locks


@transaction.atomic
def people_code_create(
    *,
    purpose: str,
    holder_name: str,
    actor: Actor,
    now: datetime,
    lock: Lock | None = None,
    property: Property | None = None,
    pin: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> list[AccessCode]:
    """A person's code on `lock`, or on every lock of `property`; ongoing when no window is given.

    The PIN is the one given (checked on every lock) or generated — one PIN for every door when one fits
    them all. Raises ValidationError (keyed by field) before anything is saved."""
    errors: dict[str, str] = {}
    if purpose not in PEOPLE_PURPOSES:
        errors["purpose"] = "Choose cleaner, maintenance, owner or staff."
    errors |= _check_holder(holder_name)
    errors |= _check_window(starts_at, ends_at, now)
    locks = _locks_for(lock, property)
    if pin:
        errors |= _check_pin(pin, locks)
    if errors:
        raise ValidationError(errors)
    return codes_make(locks, purpose=purpose, holder=holder_name.strip(), pin=pin, starts_at=starts_at,
                      ends_at=ends_at, key=f"people-{uuid.uuid4().hex}", keep_key=False, actor=actor, now=now)


def codes_make(
    locks: Sequence[Lock],
    *,
    purpose: str,
    holder: str,
    pin: str | None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    key: str,
    keep_key: bool,
    actor: Actor,
    now: datetime,
) -> list[AccessCode]:
    """Codes with no booking on `locks`, one PIN on every door where one fits (sharing `key`); `keep_key`
    keeps the key even when each door got its own PIN (it names the group, e.g. a turnover's gap). A
    chosen `pin` must have been checked. Programmed now when due, else by the tick."""
    tenant = locks[0].tenant
    settable = [door for door in locks if not lock_chooses_pin(door)]
    common_key = key if len(settable) > 1 or keep_key else ""
    if pin:
        chosen, used_key = {door.pk: pin for door in settable}, common_key
    elif settable:
        chosen, used_key = pins_for_locks(settable, taken={door.pk: live_pins(door) for door in settable},
                                          default_length=tenant.default_code_length, common_key=common_key)
    else:
        chosen, used_key = {}, ""
    if keep_key:
        used_key = key
    missing = [door.name for door in settable if door.pk not in chosen]
    if missing:
        raise ValidationError({"pin": f"No free PIN valid for {', '.join(missing)} was found; remove old codes "
                                      "or choose a PIN."})
    code_type = CodeType.ONGOING if starts_at is None else CodeType.TIME_BOUND
    created: list[AccessCode] = []
    for door in locks:
        program_at = program_time(lock=door, starts_at=starts_at, now=now)
        code = AccessCode.objects.create(
            tenant_id=door.tenant_id, lock=door, booking=None, purpose=purpose, holder_name=holder,
            code_type=code_type, name=fit_name(holder, door), pin=chosen.get(door.pk, ""),
            common_code_key=used_key if door.pk in chosen or keep_key else "",
            starts_at=starts_at, ends_at=ends_at, program_at=program_at,
        )
        activity_record(
            tenant_id=door.tenant_id, verb="code.created",
            message=f"{code.get_purpose_display()} code for {holder} on {door.name} planned",
            now=now, code=code, actor=actor,
            data={"purpose": purpose, "starts_at": starts_at.isoformat() if starts_at else None,
                  "ends_at": ends_at.isoformat() if ends_at else None, "program_at": program_at.isoformat()},
        )
        if program_at <= now:
            code_program(code=code, now=now, actor=actor)
        created.append(code)
    return created


def people_code_group(code: AccessCode) -> list[AccessCode]:
    """The code and the live codes sharing its PIN on the property's other doors (made together)."""
    return [code, *pin_siblings(code)]


@transaction.atomic
def people_code_update(
    *,
    code: AccessCode,
    holder_name: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    actor: Actor,
    now: datetime,
    pin: str | None = None,
) -> list[AccessCode]:
    """New holder's name, window (None, None: ongoing) and, when given, PIN for a person's code and the
    codes sharing its PIN on other doors; each is moved on its lock through the queue. ValidationError
    before anything changes."""
    code = AccessCode.objects.select_for_update().select_related("lock", "tenant").get(pk=code.pk)
    if code.booking_id is not None or code.purpose not in PEOPLE_PURPOSES:
        raise ValidationError("Only a person's code is changed here; a guest's follows its booking.")
    if code.status in (CodeStatus.REMOVING, CodeStatus.REMOVED):
        raise ValidationError("This code is being removed.")
    group = people_code_group(code)
    errors = _check_holder(holder_name)
    window_same = (starts_at, ends_at) == (code.starts_at, code.ends_at)
    if not window_same:
        errors |= _check_window(starts_at, ends_at, now)
    new_pin = pin if pin and pin != code.pin else None
    if new_pin:
        errors |= _check_pin(new_pin, [member.lock for member in group], exclude=group)
    if errors:
        raise ValidationError(errors)
    holder = holder_name.strip()
    code_type = CodeType.ONGOING if starts_at is None else CodeType.TIME_BOUND
    for member in group:
        AccessCode.objects.filter(pk=member.pk).update(holder_name=holder, code_type=code_type)
        member.holder_name, member.code_type = holder, code_type
        code_follow_window(member, holder=holder, starts_at=starts_at, ends_at=ends_at,
                           program_at=program_time(lock=member.lock, starts_at=starts_at, now=now),
                           now=now, actor=actor)
    if new_pin:
        for member in code_new_pin(code, now=now, pin=new_pin):
            member.refresh_from_db()
            code_send_new_pin(member, now=now, actor=actor)
    return group


@transaction.atomic
def people_code_remove(*, code: AccessCode, actor: Actor, now: datetime) -> AccessCode:
    """Take a person's code off its lock (a delete through the queue; straight to removed if never sent)."""
    code = AccessCode.objects.select_for_update().select_related("lock", "tenant").get(pk=code.pk)
    if code.booking_id is not None or code.purpose not in PEOPLE_PURPOSES:
        raise ValidationError("Only a person's code is removed here; a guest's follows its booking.")
    activity_record(tenant_id=code.tenant_id, verb="code.remove_requested",
                    message=f"Removal of {code.name!r} requested", now=now, code=code, actor=actor)
    code_remove(code=code, now=now, actor=actor, note="removed by staff")
    return code
