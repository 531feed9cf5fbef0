"""What a guest message may say, and sending one (DESIGN §4 "Guests are told only what is true").

`stay_doors` is each door of a stay with the guest's own code and any backup code handed to the stay;
`door_lines` turns them into what a message of a kind may tell, or says why it may not ("Back door not
confirmed"): a PIN goes into a message only when `locks.selectors.code_is_confirmed` holds for it on
that door. `message_deliver` renders the message at send time, sends it by email (Django's backend) or
SMS (portal/sms.py), keeps the redacted copy and, on success, marks each told code `guest_notified`.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse

from locks.activity import activity_record
from locks.conf import engine
from locks.models import AccessCode, CodePurpose, CodeStatus, Lock
from locks.pin_change import code_guest_told
from locks.selectors import code_is_confirmed
from portal.guest_links import guest_link_issue
from portal.message_templates import DoorLine, message_render, stay_of, template_words
from portal.models import Booking, Message, MessageChannel, MessageKind, MessageStatus
from portal.sms import SmsError, sms_backend

logger = logging.getLogger(__name__)

CODE_KINDS = (MessageKind.CODE_DELIVERY, MessageKind.CODE_CHANGED)


class NotTrue(Exception):
    """The message would tell the guest something that is not (yet) true; the text says what."""


@dataclass
class Door:
    lock: Lock
    code: AccessCode | None = None  # the guest's own code (the latest not removed)
    backup: AccessCode | None = None  # a backup code handed to the stay, confirmed on the door

    @property
    def confirmed(self) -> bool:
        return self.code is not None and bool(self.code.pin) and code_is_confirmed(self.code)

    def on_its_way(self, now: datetime) -> bool:
        """Not confirmed, but not late either: its programming time has not come, or came less than the
        late-alert grace ago (a just-in-time lock gets its code an hour or so before the window)."""
        code = self.code
        if code is None or self.confirmed or code.status not in (CodeStatus.UNSET, CodeStatus.SETTING):
            return False
        if code.program_at is None:  # no programming time: waiting for one (unset) or long sent (setting)
            return code.status == CodeStatus.UNSET
        return code.program_at > now - timedelta(minutes=engine().LATE_ALERT_MINUTES)


@dataclass
class Delivery:
    message: Message
    codes: list[AccessCode] = field(default_factory=list)  # the codes whose PINs it carried


def stay_doors(booking: Booking, *, for_send: bool = False) -> list[Door]:
    """`for_send` (inside the sending transaction): the codes' rows are locked until it commits, so no
    code changes status between "confirmed on the door" and the message carrying its PIN."""
    doors: dict[int, Door] = {}
    codes = (AccessCode.objects.select_related("lock").filter(booking=booking)
             .filter(purpose__in=[CodePurpose.GUEST, CodePurpose.BACKUP]).exclude(status=CodeStatus.REMOVED)
             .order_by("lock__name", "-id"))
    if for_send:
        codes = codes.select_for_update(of=("self",))
    for code in codes:
        door = doors.setdefault(code.lock_id, Door(code.lock))
        if code.purpose == CodePurpose.GUEST and door.code is None:
            door.code = code
        elif code.purpose == CodePurpose.BACKUP and door.backup is None and code.status == CodeStatus.SET:
            door.backup = code
    return list(doors.values())


def unconfirmed(doors: list[Door]) -> list[Door]:
    """Doors whose guest code is not confirmed (or has no PIN Lockstep knows)."""
    return [door for door in doors if not door.confirmed]


def next_look(doors: list[Door], now: datetime, *, every: timedelta) -> datetime:
    """When a message held for these doors is next worth asking about by the clock alone (a change to a code
    of the stay is news at once): a door on its way turns late when its programming time plus the grace has
    passed (its programming moves the code anyway); a late door is asked about again `every`."""
    grace = timedelta(minutes=engine().LATE_ALERT_MINUTES)
    moments = [door.code.program_at + grace if door.on_its_way(now) and door.code is not None
               and door.code.program_at is not None else now + every for door in unconfirmed(doors)]
    return min(moments, default=now + every)


def late(doors: list[Door], now: datetime) -> list[Door]:
    """Doors not confirmed that should have been by now (the ones staff must look at)."""
    return [door for door in unconfirmed(doors) if not door.on_its_way(now)]


def _why_not(doors: list[Door]) -> str:
    names = [door.lock.name for door in doors]
    return f"{', '.join(names)} not confirmed"


def door_lines(doors: list[Door], *, kind: str) -> list[tuple[DoorLine, AccessCode]]:
    """What a message of `kind` tells about each door, with the code behind each line; NotTrue when a
    door has nothing confirmed to tell. Instructions carry no PIN at all."""
    if kind == MessageKind.INSTRUCTIONS:
        return []
    if not doors:
        raise NotTrue("No door codes yet")
    lines: list[tuple[DoorLine, AccessCode]] = []
    missing: list[Door] = []
    for door in doors:
        if door.confirmed and door.code is not None:
            lines.append((DoorLine(door.lock.name, door.code.pin), door.code))
        elif kind == MessageKind.BACKUP_CODE and door.backup is not None and door.backup.pin:
            lines.append((DoorLine(door.lock.name, door.backup.pin, backup=True), door.backup))
        else:
            missing.append(door)
    if missing:
        raise NotTrue(_why_not(missing))
    return lines


class GuestLinks:
    """One guest page link per stay for the messages sent together: making a link ends the older one, so
    the email and the text of one send must carry the same."""

    def __init__(self) -> None:
        self._made: dict[int, str] = {}

    def for_booking(self, booking: Booking) -> str:
        if booking.pk not in self._made:
            self._made[booking.pk] = guest_link_issue(booking)
        return self._made[booking.pk]


def recipient_for(booking: Booking, channel: str) -> str:
    return booking.guest_email if channel == MessageChannel.EMAIL else booking.guest_phone


def channels_of(booking: Booking) -> list[str]:
    """The channels the guest can be reached on (email first)."""
    return [channel for channel in (MessageChannel.EMAIL, MessageChannel.SMS) if recipient_for(booking, channel)]


def _status_callback(message: Message) -> str:
    if not settings.SMS_BACKEND.endswith("TwilioSmsBackend"):
        return ""
    return settings.PUBLIC_BASE_URL + reverse("twilio_status", args=[message.pk])


def _send(message: Message, subject: str, body: str) -> str:
    """Send by the message's channel; returns the provider's id. SmsError / OSError / SMTPException."""
    if message.channel == MessageChannel.EMAIL:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [message.recipient]).send()
        return ""
    return sms_backend().send(to=message.recipient, body=body, status_callback=_status_callback(message)).provider_id


def message_deliver(
    *, message: Message, lines: list[tuple[DoorLine, AccessCode]], now: datetime, links: GuestLinks | None = None
) -> Delivery:
    """Render and send a claimed message (the caller checked `door_lines` a moment ago, in the same
    transaction); record what was sent, redacted. Never raises for a delivery failure: the message is
    `failed` with our words."""
    booking = message.booking
    words = template_words(tenant=booking.tenant, prop=booking.property, kind=message.kind, channel=message.channel,
                           language=booking.language)
    stay = stay_of(booking, doors=tuple(line for line, _ in lines), guest_link=(links or GuestLinks()).for_booking(booking))
    text = message_render(words, stay, channel=message.channel)
    told = [code for _, code in lines]
    try:
        provider_id = _send(message, text.subject, text.body)
    except (SmsError, smtplib.SMTPException, OSError) as exc:
        error = str(exc) if isinstance(exc, SmsError) else "The mail server did not accept it."
        logger.info("guest message %s failed: %s", message.pk, exc.__class__.__name__)
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.FAILED, error=error[:300],
                                                     subject=text.redacted_subject[:300], body=text.redacted_body)
        message.refresh_from_db()
        activity_record(tenant_id=message.tenant_id, verb="message.failed", booking_id=booking.pk, now=now,
                        message=f"{message.get_kind_display()} to the guest by {message.channel} failed: {error}",
                        data={"message": message.pk, "channel": message.channel})
        return Delivery(message)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENT, sent_at=now, provider_id=provider_id, why_held="", error="",
        subject=text.redacted_subject[:300], body=text.redacted_body)
    message.refresh_from_db()
    activity_record(tenant_id=message.tenant_id, verb="message.sent", booking_id=booking.pk, now=now,
                    message=f"{message.get_kind_display()} sent to the guest by {message.channel}",
                    data={"message": message.pk, "channel": message.channel, "kind": message.kind})
    for code in told:
        code_guest_told(code=code, now=now)  # and a code it replaced comes off the door now
    return Delivery(message, told)
