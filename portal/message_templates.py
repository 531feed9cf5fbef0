"""Guest message templates (DESIGN §3 Message, issue 13): the words of each kind of message, per tenant,
overridable per property, per channel and language, with built-in English defaults; and their rendering.

Placeholders are `{name}` words (not a template language: tenants type these, and a template engine
would let them reach tags and attributes):

    {guest_name} {property} {address} {check_in} {check_out} {window} {instructions} {guest_link} {doors}

`{doors}` is one line per door, "Front door: 482913" (in a subject, a mail header, it reads ••••). A body
is rendered twice: with the PINs for the guest, and with every PIN replaced by •••• for what Lockstep
keeps (`MessageText.redacted_body`), so the stored copy never holds a PIN in clear whatever the template
says; the guest page link is kept as "[guest page link]" (a subject never carries it either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.models import Booking, MessageChannel, MessageKind, MessageTemplate, Property, Tenant
from portal.times import local_time

DEFAULT_LANGUAGE = "en"
MASK = "••••"
LINK_MASK = "[guest page link]"
PLACEHOLDERS = ("guest_name", "property", "address", "check_in", "check_out", "window", "instructions",
                "guest_link", "doors")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Words:
    subject: str
    body: str


_EMAIL_FOOT = "\n\nYour stay page (codes, times and instructions): {guest_link}\n"
BUILT_IN: dict[tuple[str, str], Words] = {
    (MessageKind.CODE_DELIVERY, MessageChannel.EMAIL): Words(
        "Your door codes for {property}",
        "Hello {guest_name},\n\nYour stay at {property}: {window}.\n\nYour door codes:\n{doors}\n\n{instructions}"
        + _EMAIL_FOOT),
    (MessageKind.CODE_DELIVERY, MessageChannel.SMS): Words(
        "", "{property}, {window}. Door codes: {doors} More: {guest_link}"),
    (MessageKind.CODE_CHANGED, MessageChannel.EMAIL): Words(
        "New door codes for {property}",
        "Hello {guest_name},\n\nYour door codes at {property} have changed. The new ones already work:\n{doors}\n"
        "\nThe old codes stop working soon." + _EMAIL_FOOT),
    (MessageKind.CODE_CHANGED, MessageChannel.SMS): Words(
        "", "{property}: your door codes have changed. New codes: {doors} More: {guest_link}"),
    (MessageKind.BACKUP_CODE, MessageChannel.EMAIL): Words(
        "Your door codes for {property}",
        "Hello {guest_name},\n\nYour stay at {property}: {window}.\n\nUse these codes; each one is already on "
        "its door:\n{doors}\n\n{instructions}" + _EMAIL_FOOT),
    (MessageKind.BACKUP_CODE, MessageChannel.SMS): Words(
        "", "{property}, {window}. Use these door codes: {doors} More: {guest_link}"),
    (MessageKind.INSTRUCTIONS, MessageChannel.EMAIL): Words(
        "Check-in at {property}",
        "Hello {guest_name},\n\nYour stay at {property}: {window}.\n\n{instructions}\n\nYour door codes will "
        "be on your stay page once they are on the doors." + _EMAIL_FOOT),
    (MessageKind.INSTRUCTIONS, MessageChannel.SMS): Words(
        "", "{property}, {window}. Check-in details: {guest_link}"),
}


@dataclass(frozen=True)
class DoorLine:
    door: str
    pin: str
    backup: bool = False


@dataclass(frozen=True)
class Stay:
    """What a message says about a stay (times already written in the property's zone)."""

    guest_name: str
    property_name: str
    address: str
    check_in: str
    check_out: str
    instructions: str
    guest_link: str
    doors: tuple[DoorLine, ...] = ()


@dataclass(frozen=True)
class MessageText:
    subject: str
    body: str
    redacted_subject: str
    redacted_body: str


def template_words(*, tenant: Tenant, prop: Property | None, kind: str, channel: str, language: str) -> Words:
    """The words to use: the property's own, then the tenant's, in the guest's language and then in
    English; the built-in English words when the tenant wrote none."""
    languages = [language, DEFAULT_LANGUAGE] if language and language != DEFAULT_LANGUAGE else [DEFAULT_LANGUAGE]
    found = {
        (t.property_id, t.language): t
        for t in MessageTemplate.objects.for_tenant(tenant).filter(kind=kind, channel=channel,
                                                                   language__in=languages)
    }
    for lang in languages:
        for owner in ((prop.pk if prop is not None else None), None):
            template = found.get((owner, lang))
            if template is not None:
                return Words(template.subject, template.body)
    return BUILT_IN[(kind, channel)]


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})


def _doors_text(doors: tuple[DoorLine, ...], *, masked: bool, channel: str) -> str:
    lines = [f"{d.door}: {MASK if masked else d.pin}{' (backup code)' if d.backup else ''}" for d in doors]
    return ("\n" if channel == MessageChannel.EMAIL else "; ").join(lines) + ("" if channel == MessageChannel.EMAIL
                                                                               else ".")


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def message_render(words: Words, stay: Stay, *, channel: str) -> MessageText:
    values = {
        "guest_name": stay.guest_name, "property": stay.property_name, "address": stay.address,
        "check_in": stay.check_in, "check_out": stay.check_out, "window": f"{stay.check_in} → {stay.check_out}",
        "instructions": stay.instructions, "guest_link": stay.guest_link,
    }
    clear = {**values, "doors": _doors_text(stay.doors, masked=False, channel=channel)}
    # The guest page link is a secret too (only its hash is kept): the kept copy names it, nothing more.
    masked = {**values, "doors": _doors_text(stay.doors, masked=True, channel=channel), "guest_link": LINK_MASK}
    # A subject is a mail header: it never carries a PIN, not even the guest's own (issue 13, acceptance 3).
    subject = _fill(words.subject, masked).replace("\n", " ") if channel == MessageChannel.EMAIL else ""
    redacted_body = _fill(words.body, masked)
    for door in stay.doors:  # a PIN typed into the template itself is not kept either
        redacted_body = redacted_body.replace(door.pin, MASK) if door.pin else redacted_body
        subject = subject.replace(door.pin, MASK) if door.pin else subject
    return MessageText(subject, _fill(words.body, clear), subject, redacted_body)


def stay_of(booking: Booking, *, doors: tuple[DoorLine, ...], guest_link: str) -> Stay:
    prop = booking.property
    return Stay(
        guest_name=booking.guest_name, property_name=prop.name, address=prop.address,
        check_in=local_time(booking.check_in, prop.timezone, now=booking.check_in),
        check_out=local_time(booking.check_out, prop.timezone, now=booking.check_in),
        instructions=prop.guest_instructions, guest_link=guest_link, doors=doors,
    )


def sample_stay(tenant: Tenant, prop: Property | None = None) -> Stay:
    """A made-up stay for the template preview (DESIGN §7 settings): nothing of a real guest."""
    zone = prop.timezone if prop is not None else tenant.timezone
    check_in = datetime(2026, 7, 3, 15, 0, tzinfo=UTC)
    return Stay(
        guest_name="Sam Sample", property_name=prop.name if prop is not None else "Sample Cottage",
        address=prop.address if prop is not None else "1 Example Street",
        check_in=local_time(check_in, zone, now=check_in),
        check_out=local_time(check_in + timedelta(days=3, hours=-4), zone, now=check_in),
        instructions=(prop.guest_instructions if prop is not None and prop.guest_instructions
                      else "The key safe is left of the blue gate."),
        guest_link="https://example.com/g/sample-link/",
        doors=(DoorLine("Front door", "482913"), DoorLine("Back door", "739164")),
    )
