"""The guest's "My code doesn't work" (DESIGN §7 guest page, issue kind `guest_reports_code_not_working`).

One atomic action, at the top of the engine like the staff actions: for each of the stay's doors it queues
a read of the lock (through the lock's queue, like "Check the lock": nothing calls a vendor from the web
request) and opens (or bumps) an urgent issue carrying the guest's words; where a door keeps a pool of
backup codes (locks.backup), one already confirmed on that door is handed to the stay, recorded as the
booking page's hand-out is, so the guest page can show it at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from locks.activity import activity_record
from locks.backup import backup_code_hand_out, locks_with_a_ready_backup
from locks.issues import issue_open
from locks.models import AccessCode, CodePurpose, CodeStatus, IssueKind, Lock
from locks.reconcile import lock_queue_read

if TYPE_CHECKING:
    from portal.models import Booking

REPORT_MAX_LENGTH = 500
# A guest may type the PIN they tried into the report; digits that could be a PIN never reach an issue,
# the Activity log or an alert mail.
_DIGIT_RUN = re.compile(r"\d[\d\s-]{2,}\d")


def redact_digits(text: str) -> str:
    return _DIGIT_RUN.sub("••••", text)


@dataclass
class GuestReport:
    locks: list[Lock] = field(default_factory=list)  # each got a queued read and an issue
    backups: list[AccessCode] = field(default_factory=list)  # backup codes the stay now holds, on the door


def _doors(booking: Booking) -> list[tuple[Lock, AccessCode | None]]:
    """Each door of the stay with its guest code (the latest live one per lock); a stay without codes
    reports on every door of its property, so the report still reaches someone."""
    doors: dict[int, tuple[Lock, AccessCode | None]] = {}
    codes = (AccessCode.objects.select_related("lock").filter(booking=booking, purpose=CodePurpose.GUEST)
             .exclude(status=CodeStatus.REMOVED).order_by("lock__name", "-id"))
    for code in codes:
        doors.setdefault(code.lock_id, (code.lock, code))
    if not doors:
        for lock in Lock.objects.filter(property_id=booking.property_id, managed=True).order_by("name"):
            doors[lock.pk] = (lock, None)
    return list(doors.values())


def stay_backup_codes(booking: Booking) -> list[AccessCode]:
    """Backup codes handed to the stay that are confirmed on their door."""
    return list(AccessCode.objects.select_related("lock").filter(
        booking=booking, purpose=CodePurpose.BACKUP, status=CodeStatus.SET).order_by("lock__name", "id"))


@transaction.atomic
def guest_report_code_not_working(*, booking: Booking, report: str, now: datetime) -> GuestReport:
    words = redact_digits(report.strip())[:REPORT_MAX_LENGTH] or "(no details given)"
    result = GuestReport()
    for lock, code in _doors(booking):
        lock_queue_read(lock=lock, now=now)
        issue_open(lock=lock, code=code, kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING, now=now,
                   detail=f"The guest says: {words}", data={"report": words, "booking": booking.pk})
        activity_record(tenant_id=booking.tenant_id, verb="guest.reported_code_not_working", code=code, now=now,
                        lock_id=lock.pk, booking_id=booking.pk,
                        message=f"The guest reports their code on {lock.name} does not work")
        result.locks.append(lock)
    held = {code.lock_id for code in stay_backup_codes(booking)}
    for lock in locks_with_a_ready_backup(booking):
        if lock.pk in held:
            continue
        try:
            backup = backup_code_hand_out(booking=booking, lock=lock, actor=None, now=now)
        except ValidationError:
            continue  # taken a moment ago, or the stay has ended: nothing to show for this door
        activity_record(tenant_id=booking.tenant_id, verb="guest.backup_shown", code=backup, now=now,
                        message=f"Backup code on {lock.name} shown on the guest page")
    result.backups = stay_backup_codes(booking)
    return result
