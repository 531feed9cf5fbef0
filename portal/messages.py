"""Guest messages on the clock, and staff's "Send now" / "Resend" (DESIGN §4 "Guests are told only what is
true", §6 `portal.tasks.send_messages`).

At the property's send offset before check-in (default 24 h) each confirmed stay gets one automatic code
message per channel the guest can be reached on. It is sent if and only if every door has confirmed the
guest's code (portal/message_delivery.py); otherwise it is `held` with why ("Back door not confirmed"),
each such door gets a `guest_not_told` issue (the attention queue), and every minute it is looked at
again. At the second offset (default 2 h), a stay still held gets, once, a backup code message — backup
codes handed from the doors' pools (locks.backup), so every PIN in it is already on its door — or, where
a door has none ready, its issues are escalated and staff alerted.

A message is claimed (`claimed_at`, a conditional UPDATE) before it is sent, so two workers never both
send it. `messages_send_due(now=…)` returns what it did; `manage.py simulate` can call it with recording
mail and SMS backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DurationField, Exists, ExpressionWrapper, F, IntegerField, OuterRef, Q, Value
from django.db.models.functions import Cast

from locks.activity import activity_record
from locks.backup import backup_code_hand_out, locks_with_a_ready_backup
from locks.issues import issue_open, issues_resolve
from locks.models import AccessCode, CodeStatus, IssueKind, IssueStatus, LockIssue
from portal.alerts import alerts_send_soon
from portal.message_delivery import (
    CODE_KINDS,
    Delivery,
    Door,
    GuestLinks,
    NotTrue,
    channels_of,
    door_lines,
    late,
    message_deliver,
    next_look,
    recipient_for,
    stay_doors,
    unconfirmed,
)
from portal.models import Booking, BookingStatus, Message, MessageKind, MessageStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser | None

# The largest send offset a property may have; bounds the scan for new stays (an index range).
MAX_OFFSET = timedelta(hours=168)
RECHECK = timedelta(minutes=5)  # a held message with nothing new about it is asked again this often
BATCH = 500


@dataclass
class SendReport:
    sent: list[Delivery] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)
    backups: list[Delivery] = field(default_factory=list)
    escalated: list[Booking] = field(default_factory=list)


def _hours(name: str) -> ExpressionWrapper:
    # Cast: SQLite multiplies a duration only by a plain integer field, not a small positive one.
    return ExpressionWrapper(Cast(name, IntegerField()) * Value(timedelta(hours=1), output_field=DurationField()),
                             output_field=DurationField())


def bookings_due(*, now: datetime) -> list[Booking]:
    """Confirmed stays past their send offset, not ended, with no automatic code message yet."""
    has_message = Message.objects.filter(booking=OuterRef("pk"), automatic=True, kind=MessageKind.CODE_DELIVERY)
    return list(
        Booking.objects.filter(status=BookingStatus.CONFIRMED, check_out__gt=now, check_in__lte=now + MAX_OFFSET)
        .annotate(send_from=F("check_in") - _hours("property__message_offset_hours"))
        .filter(send_from__lte=now).exclude(Exists(has_message))
        .select_related("property", "tenant").order_by("check_in", "pk")[:BATCH]
    )


def bookings_owed_a_change(*, now: datetime) -> list[Booking]:
    """Confirmed stays, not ended, whose guest got a new PIN after being told the old one
    (`AccessCode.pin_changed_at`, locks/pin_change.py), not told it yet, with no change message made since."""
    made_since = Message.objects.filter(booking=OuterRef("booking"), automatic=True, kind=MessageKind.CODE_CHANGED,
                                        created_at__gte=OuterRef("pin_changed_at"))
    owed = (AccessCode.objects.filter(pin_changed_at__isnull=False, guest_notified=False)
            .exclude(status__in=[CodeStatus.REMOVING, CodeStatus.REMOVED]).exclude(Exists(made_since))
            .values("booking"))
    return list(
        Booking.objects.filter(pk__in=owed, status=BookingStatus.CONFIRMED, check_out__gt=now)
        .select_related("property", "tenant").order_by("check_in", "pk")[:BATCH]
    )


def _claim(message: Message, *, now: datetime) -> bool:
    """Take the message for sending; False when someone else has (or it is no longer waiting)."""
    claimed = Message.objects.filter(pk=message.pk, status__in=[MessageStatus.QUEUED, MessageStatus.HELD],
                                     claimed_at__isnull=True).update(status=MessageStatus.QUEUED, claimed_at=now)
    return bool(claimed)


def _hold(message: Message, why: str, doors: list[Door], *, now: datetime, look_again: datetime) -> None:
    Message.objects.filter(pk=message.pk).update(checked_at=now, look_again_at=look_again)
    if message.status != MessageStatus.HELD or message.why_held != why:
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.HELD, why_held=why[:300])
        message.status, message.why_held = MessageStatus.HELD, why
        activity_record(tenant_id=message.tenant_id, verb="message.held", booking_id=message.booking_id, now=now,
                        message=f"{message.get_kind_display()} for the guest held: {why}",
                        data={"message": message.pk, "why": why})
    for door in doors:
        # Once per door: one a minute would bump it forever, and one staff dismissed stays dismissed (until
        # the second offset escalates it).
        already = LockIssue.objects.filter(lock=door.lock, access_code=door.code, kind=IssueKind.GUEST_NOT_TOLD,
                                           status__in=[IssueStatus.OPEN, IssueStatus.DISMISSED]).exists()
        if not already:
            issue_open(lock=door.lock, code=door.code, kind=IssueKind.GUEST_NOT_TOLD, now=now,
                       our_inference=f"The guest's code message is held: {door.lock.name} has not confirmed their "
                       "code.", data={"booking": message.booking_id})


def _settle_issues(booking: Booking, *, now: datetime, why: str) -> None:
    for issue in LockIssue.objects.filter(kind=IssueKind.GUEST_NOT_TOLD, status=IssueStatus.OPEN,
                                          access_code__booking=booking).select_related("lock", "access_code"):
        issues_resolve(lock=issue.lock, code=issue.access_code, kinds=[IssueKind.GUEST_NOT_TOLD], now=now, why=why)


@transaction.atomic
def message_try_send(*, message: Message, now: datetime, links: GuestLinks | None = None) -> Delivery | None:
    """Send an automatic message if every door says what it would tell; else hold it. None: held or taken."""
    doors = stay_doors(message.booking, for_send=True)
    try:
        lines = door_lines(doors, kind=message.kind)
    except NotTrue as why:
        # Issues only for doors that are late: a just-in-time door whose turn has not come is on schedule.
        _hold(message, str(why), late(doors, now), now=now, look_again=next_look(doors, now, every=RECHECK))
        return None
    if not message.recipient:  # the booking may have gained one since the message was made
        message.recipient = recipient_for(message.booking, message.channel)
        Message.objects.filter(pk=message.pk).update(recipient=message.recipient)
    if not message.recipient:
        _hold(message, "No email or phone for the guest", [], now=now, look_again=now + RECHECK)
        return None
    if not _claim(message, now=now):
        return None
    delivery = message_deliver(message=message, lines=lines, now=now, links=links)
    if delivery.message.status == MessageStatus.SENT:
        _settle_issues(message.booking, now=now, why="the guest was told")
    return delivery


def _automatic(booking: Booking, kind: str, *, now: datetime) -> list[Message]:
    """The stay's automatic messages of `kind`, one per channel (made now if missing)."""
    channels = channels_of(booking) or ["email"]
    made = []
    for channel in channels:
        try:
            with transaction.atomic():
                made.append(Message.objects.create(
                    tenant_id=booking.tenant_id, booking=booking, kind=kind, channel=channel, automatic=True,
                    recipient=recipient_for(booking, channel), created_at=now))
        except IntegrityError:
            continue  # another worker made it: theirs to send
    return made


def _fallback_due(booking: Booking, now: datetime) -> bool:
    return now >= booking.check_in - timedelta(hours=booking.property.message_second_offset_hours)


@dataclass
class Fallback:
    deliveries: list[Delivery]
    escalated: bool


@transaction.atomic
def booking_fallback(*, booking: Booking, now: datetime, links: GuestLinks | None = None) -> Fallback | None:
    """At the second offset, once: backup codes from the pools of the doors not confirmed and a message
    with them, or, where a door has none ready, the stay's issues escalated to staff. None: done before, or
    not yet (a door's code is still on its way: its just-in-time programming has not come or just came)."""
    if any(door.on_its_way(now) for door in unconfirmed(stay_doors(booking))):
        return None  # a door's code is still on its way: not yet
    backup_messages = _automatic(booking, MessageKind.BACKUP_CODE, now=now)
    if not backup_messages:
        return None
    ready = {lock.pk for lock in locks_with_a_ready_backup(booking)}
    for door in unconfirmed(stay_doors(booking)):
        if door.backup is None and door.lock.pk in ready and channels_of(booking):
            try:
                backup_code_hand_out(booking=booking, lock=door.lock, actor=None, now=now)
            except ValidationError:
                continue  # taken a moment ago: this door has none to give
    links = links or GuestLinks()
    deliveries = [d for d in (message_try_send(message=m, now=now, links=links) for m in backup_messages)
                  if d is not None]
    if any(d.message.status == MessageStatus.SENT for d in deliveries):
        Message.objects.filter(booking=booking, automatic=True, kind=MessageKind.CODE_DELIVERY,
                               status=MessageStatus.HELD).update(why_held="A backup code message was sent instead")
        _settle_issues(booking, now=now, why="the guest was sent backup codes")
        return Fallback(deliveries, escalated=False)
    missing = unconfirmed(stay_doors(booking))
    if not missing:  # every door is fine: what is missing is a way to reach the guest (the page says so)
        return Fallback(deliveries, escalated=False)
    for door in missing:
        issue_open(lock=door.lock, code=door.code, kind=IssueKind.GUEST_NOT_TOLD, now=now, data={"escalated": True},
                   our_inference=f"Check-in is close and {door.lock.name} has not confirmed the guest's code; no "
                   "backup code is ready to send instead. Tell the guest another way in.")
    names = ", ".join(door.lock.name for door in missing)
    Message.objects.filter(pk__in=[m.pk for m in backup_messages], status=MessageStatus.HELD).update(
        why_held=f"No backup code ready on {names}; staff alerted"[:300])
    activity_record(tenant_id=booking.tenant_id, verb="message.escalated", booking_id=booking.pk, now=now,
                    message=f"The guest still cannot be told their codes ({names}); staff alerted")
    alerts_send_soon()
    return Fallback(deliveries, escalated=True)


def _waiting(*, now: datetime) -> list[Message]:
    """Automatic code messages (a stay's codes, or a new PIN) still held for stays that have not ended (and got
    no backup instead), that
    are worth asking about again: a code of the stay (or the stay) changed since they were last held, their
    second offset came since, or the clock reached their next look (`next_look`: a just-in-time door's
    programming time, or RECHECK for a late one). Asking every held message every minute cost more than the
    engine's own minute work (`simulate`: 16 tries a step; a just-in-time door holds its stay's message for
    most of a day)."""
    backup_sent = Message.objects.filter(booking=OuterRef("booking"), automatic=True, kind=MessageKind.BACKUP_CODE,
                                         status=MessageStatus.SENT)
    code_changed = AccessCode.objects.filter(booking=OuterRef("booking"), updated_at__gt=OuterRef("checked_at"))
    second = F("booking__check_in") - _hours("booking__property__message_second_offset_hours")
    return list(
        Message.objects.filter(status=MessageStatus.HELD, automatic=True, kind__in=CODE_KINDS,
                               booking__status=BookingStatus.CONFIRMED, booking__check_out__gt=now)
        .exclude(Q(kind=MessageKind.CODE_DELIVERY) & Exists(backup_sent))
        .annotate(second_at=second)
        .filter(Q(look_again_at__isnull=True) | Q(look_again_at__lte=now) | Exists(code_changed)
                | Q(booking__updated_at__gt=F("checked_at")) | Q(second_at__gt=F("checked_at"), second_at__lte=now))
        .select_related("booking__property", "booking__tenant").order_by("booking__check_in", "pk")[:BATCH]
    )


def _close_ended(*, now: datetime) -> None:
    """`guest_not_told` issues of stays cancelled or over: nobody is waiting to be told any more."""
    over = Q(access_code__booking__status=BookingStatus.CANCELLED) | Q(access_code__booking__check_out__lte=now)
    for issue in (LockIssue.objects.filter(kind=IssueKind.GUEST_NOT_TOLD, status=IssueStatus.OPEN).filter(over)
                  .select_related("lock", "access_code")[:BATCH]):
        issues_resolve(lock=issue.lock, code=issue.access_code, kinds=[IssueKind.GUEST_NOT_TOLD], now=now,
                       why="the stay is over or cancelled")


def messages_send_due(*, now: datetime) -> SendReport:
    """The minute's work (DESIGN §6): new stays at their offset, held ones again, fallbacks at the second
    offset. Idempotent: a message is claimed before it is sent."""
    report = SendReport()
    links = GuestLinks()
    for kind, bookings in ((MessageKind.CODE_DELIVERY, bookings_due(now=now)),
                           (MessageKind.CODE_CHANGED, bookings_owed_a_change(now=now))):
        for booking in bookings:
            for message in _automatic(booking, kind, now=now):
                delivery = message_try_send(message=message, now=now, links=links)
                if delivery is not None:
                    report.sent.append(delivery)
                else:
                    report.held.append(message)
    for message in _waiting(now=now):
        if message not in report.held:  # held a moment ago by the loop above: not looked at twice
            delivery = message_try_send(message=message, now=now, links=links)
            if delivery is not None:
                report.sent.append(delivery)
                continue
        if message.kind == MessageKind.CODE_DELIVERY and message.status == MessageStatus.HELD \
                and _fallback_due(message.booking, now):
            fallback = booking_fallback(booking=message.booking, now=now, links=links)
            if fallback is not None:
                report.backups += [d for d in fallback.deliveries if d.message.status == MessageStatus.SENT]
                if fallback.escalated:
                    report.escalated.append(message.booking)
    _close_ended(now=now)
    return report


# --- staff: "Send now" and "Resend" from the booking page


def _manual(booking: Booking, *, kind: str, channel: str, actor: Actor, now: datetime) -> Message:
    return Message.objects.create(
        tenant_id=booking.tenant_id, booking=booking, kind=kind, channel=channel, automatic=False,
        recipient=recipient_for(booking, channel), claimed_at=now, created_at=now,
        created_by=actor if isinstance(actor, User) else None)


@transaction.atomic
def message_send_now(*, booking: Booking, kind: str, actor: Actor, now: datetime) -> list[Delivery]:
    """Send `kind` to the guest on every channel they have, now. ValidationError (nothing sent) when a door
    has not confirmed what the message would tell, the stay is not confirmed, or the guest has no contact."""
    if booking.status != BookingStatus.CONFIRMED or booking.check_out <= now:
        raise ValidationError("Only a confirmed stay that has not ended gets messages.")
    channels = channels_of(booking)
    if not channels:
        raise ValidationError("The booking has no email or phone for the guest.")
    try:
        lines = door_lines(stay_doors(booking, for_send=True), kind=kind)
    except NotTrue as why:
        raise ValidationError(f"Not sent: {why}. A guest is only told a PIN once it is on the door.") from why
    deliveries = []
    links = GuestLinks()
    for channel in channels:
        held = Message.objects.filter(booking=booking, kind=kind, channel=channel, automatic=True,
                                      status=MessageStatus.HELD).first()
        if held is not None and _claim(held, now=now):
            message = held
        else:
            message = _manual(booking, kind=kind, channel=channel, actor=actor, now=now)
        deliveries.append(message_deliver(message=message, lines=lines, now=now, links=links))
    if any(d.message.status == MessageStatus.SENT for d in deliveries) and kind != MessageKind.INSTRUCTIONS:
        _settle_issues(booking, now=now, why="the guest was told")
    return deliveries


@transaction.atomic
def message_resend(*, message: Message, actor: Actor, now: datetime) -> Delivery:
    """Send a message of the same kind on the same channel again, rendered now (the kept copy is redacted)."""
    booking = message.booking
    if booking.status != BookingStatus.CONFIRMED or booking.check_out <= now:
        raise ValidationError("Only a confirmed stay that has not ended gets messages.")
    if not recipient_for(booking, message.channel):
        raise ValidationError(f"The booking has no {message.get_channel_display().lower()} for the guest.")
    try:
        lines = door_lines(stay_doors(booking, for_send=True), kind=message.kind)
    except NotTrue as why:
        raise ValidationError(f"Not sent: {why}. A guest is only told a PIN once it is on the door.") from why
    resent = _manual(booking, kind=message.kind, channel=message.channel, actor=actor, now=now)
    return message_deliver(message=resent, lines=lines, now=now)
