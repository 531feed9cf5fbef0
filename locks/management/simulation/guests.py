"""The guests of a simulated fleet hear from Lockstep (DESIGN §4 "Guests are told only what is true").

Every step the portal's minute work for guest messages runs (`portal.messages.messages_send_due`), with
email on Django's locmem backend and texts on the recording SMS backend. Each message the portal sent is
checked against what the simulated lock really held at that moment: a PIN in a message that its door did
not hold is `messages_unconfirmed_pin` — unless the simulated vendor lied about that very code (the
`desync` fault: "done" when the lock did not), which no engine can know before its next read-back; those
are counted apart as `messages_after_vendor_lie`.

At the end, each stay whose check-in fell in the run and whose guest was not told (no code or backup-code
message sent by check-in, or for a stay booked at the last minute within the late-alert grace of its booking,
the time its doors take to be programmed) must be explained: a `guest_not_told` issue opened for it (the attention queue)
or staff escalated to. `guests_not_told_by_checkin` counts them, `guests_not_told_unexplained` the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core import mail
from django.test import override_settings

from locks.conf import engine
from locks.models import AccessCode, IssueKind, LockIssue
from providers.models import SimulatedDevice

SMS_BACKEND = "portal.sms.LocmemSmsBackend"


@dataclass
class GuestLedger:
    sent: int = 0
    unconfirmed: list[tuple[int, int]] = field(default_factory=list)  # (message id, code id)
    after_vendor_lie: int = 0


def guest_contact(n: int) -> dict[str, str]:
    """Every guest has an email address; every other one a phone number too (a text as well as a mail)."""
    return {"email": f"guest{n}@guests.example.test", "phone": f"+1555{n:07d}" if n % 2 else ""}


@contextlib.contextmanager
def recording_backends() -> Iterator[None]:
    from portal.sms import LocmemSmsBackend

    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", SMS_BACKEND=SMS_BACKEND):
        mail.outbox = []
        LocmemSmsBackend.outbox.clear()
        yield


def guests_tell(fleet: Any, ledger: GuestLedger, *, now: datetime) -> None:
    """The minute's guest messages, each checked against the simulated locks as they are now."""
    from portal.messages import messages_send_due
    from portal.sms import LocmemSmsBackend

    report = messages_send_due(now=now)
    deliveries = [*report.sent, *report.backups]
    if deliveries:
        devices = {device.device_id: device for device in SimulatedDevice.objects.filter(account=fleet.account)}
        for delivery in deliveries:
            ledger.sent += 1
            for code in delivery.codes:
                device = devices.get(code.lock.vendor_device_id)
                if device is not None and _holds(device, code):
                    continue
                if device is not None and _lied_about(device, code):
                    ledger.after_vendor_lie += 1
                else:
                    ledger.unconfirmed.append((delivery.message.pk, code.pk))
    mail.outbox = []  # what was sent is on the Message rows; the bodies need not pile up for a fortnight
    LocmemSmsBackend.outbox.clear()


def _holds(device: SimulatedDevice, code: AccessCode) -> bool:
    return any(item.get("code_id") == code.pk and item.get("pin") == code.pin
               and item.get("status") in ("set", "scheduled") for item in device.codes.values())


def _lied_about(device: SimulatedDevice, code: AccessCode) -> bool:
    return any(op.get("code_id") == code.pk and op.get("desync") and op.get("state") == "succeeded"
               for op in device.operations)


def guests_report(fleet: Any, ledger: GuestLedger) -> dict[str, Any]:
    from portal.models import Booking, BookingStatus, Message, MessageKind, MessageStatus

    told_kinds = (MessageKind.CODE_DELIVERY, MessageKind.BACKUP_CODE)
    not_told = 0
    unexplained: list[int] = []
    stays = Booking.objects.filter(tenant=fleet.tenant, status=BookingStatus.CONFIRMED, check_in__lte=fleet.end)
    programming = timedelta(minutes=engine().LATE_ALERT_MINUTES)
    for booking in stays:
        # A stay booked at the last minute is told once its doors could be programmed, not before.
        deadline = max(booking.check_in, booking.created_at + programming)
        told = Message.objects.filter(booking=booking, kind__in=told_kinds, status=MessageStatus.SENT,
                                      sent_at__lte=deadline).exists()
        if told:
            continue
        not_told += 1
        flagged = LockIssue.objects.filter(
            kind=IssueKind.GUEST_NOT_TOLD, access_code__booking=booking, first_seen_at__lte=deadline + timedelta(minutes=1),
        ).exists()
        if not flagged:
            unexplained.append(booking.pk)
    return {
        "messages_sent": ledger.sent,
        "messages_unconfirmed_pin": len(ledger.unconfirmed),
        "messages_after_vendor_lie": ledger.after_vendor_lie,
        "guests_not_told_by_checkin": not_told,
        "guests_not_told_unexplained": len(unexplained),
        "_unconfirmed_messages": ledger.unconfirmed[:20],
        "_not_told_unexplained": unexplained[:20],
    }
