"""What happened, in an operator's words (DESIGN §7): one table from Activity.verb (+ data) to a sentence
that says what happened to whom on which door — "Front door: Ana Costa's code is on the lock, confirmed by
the vendor". The engine's own words (verb, message, vendor refs) stay behind a details toggle on the
pages; the booking timeline, the dashboard's recent activity, the lock page's command log and the alert
emails all read from here.

Times inside a sentence come from Activity.data (the engine keeps them as ISO text) and are written in
the zone the caller shows (the property's, or the tenant's on tenant-wide lists).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from locks.models import AccessCode, Activity, CodeStatus, CommandAction, CommandState, IssueKind, LockCommand
from portal.times import local_time, parse_moment

# Normalized reasons (providers.base.Reason) → what it means for the door, in a few words.
REASON_WORDS: dict[str, str] = {
    "timeout": "the vendor did not answer in time",
    "nack": "the lock did not acknowledge it",
    "device_offline": "the lock is offline",
    "busy": "the lock was busy",
    "rate_limited": "the vendor asked us to slow down",
    "vendor_error": "the vendor answered with an error",
    "duplicate_pin": "the PIN is already used on this lock",
    "invalid_pin": "the lock refused the PIN",
    "schedule_invalid": "the vendor refused the time window",
    "slots_full": "the lock has no free code slot",
    "not_found_on_device": "the lock does not have it",
    "unrecognized_job_state": "the vendor could not map it to this lock",
    "auth_failed": "the vendor refused our credentials",
    "desync": "the lock and the vendor disagree",
    "user_not_found": "the lock does not know this user",
    "unsupported": "this lock cannot do that",
}
# Where a confirmation came from (the `note`/`source` the engine records) → how we know.
SOURCE_WORDS: dict[str, str] = {
    "response": "confirmed by the vendor",
    "webhook": "confirmed by the vendor",
    "sweep": "confirmed when we asked the vendor",
    "poll": "confirmed when we asked the vendor",
    "reconcile": "read back from the lock",
    "window started": "its window started",
}
# Command actions as a noun phrase: "programming of Ana Costa's code".
ACTION_WORDS: dict[str, str] = {
    CommandAction.CREATE: "programming",
    CommandAction.UPDATE: "update",
    CommandAction.DELETE: "removal",
    CommandAction.READ_CODES: "read of the lock's codes",
    CommandAction.RELOAD_CODES: "reload of all codes",
    CommandAction.DELETE_ALL: "clearing of every code",
    CommandAction.REMOVE_CODE: "removal of a code Lockstep does not manage",
}
LOCK_WIDE_ACTIONS = (CommandAction.READ_CODES, CommandAction.RELOAD_CODES, CommandAction.DELETE_ALL,
                     CommandAction.REMOVE_CODE)
# Command state (the command log) → how it ended or where it is.
STATE_WORDS: dict[str, str] = {
    CommandState.QUEUED: "waiting its turn",
    CommandState.SENT: "sent, waiting for the lock",
    CommandState.SUCCEEDED: "confirmed",
    CommandState.FAILED: "failed",
    CommandState.TIMED_OUT: "no answer in time",
    CommandState.SUPERSEDED: "replaced by a newer change",
    CommandState.CANCELLED: "no longer needed",
}
# Keys of Activity.data worth showing behind the toggle (refs and engine words, never times or PINs).
DETAIL_KEYS = ("from", "to", "note", "reason", "source", "action", "attempt", "vendor_ref", "vendor_code_ref",
               "vendor_event_id", "kind", "target_ref", "status")


@dataclass(frozen=True)
class Said:
    """One Activity row, ready to read: who/what/where come from its relations."""

    activity: Activity
    tz_name: str

    @property
    def data(self) -> dict[str, Any]:
        return self.activity.data if isinstance(self.activity.data, dict) else {}

    @property
    def door(self) -> str:
        lock = self.activity.lock if self.activity.lock_id else None
        return lock.name if lock is not None else ""

    @property
    def whose(self) -> str:
        """"Ana Costa's code", or the code's name for people's codes; "the code" when unknown."""
        code = self.activity.access_code if self.activity.access_code_id else None
        return code_owner_words(code)

    def when(self, key: str) -> str:
        return local_time(parse_moment(self.data.get(key)), self.tz_name)

    def reason(self) -> str:
        raw = str(self.data.get("reason") or self.data.get("note") or "")
        return REASON_WORDS.get(raw, "see the lock page for why")


def code_owner_words(code: AccessCode | None) -> str:
    if code is None:
        return "the code"
    booking = code.booking if code.booking_id else None
    if booking is not None:
        return f"{booking.guest_name}'s code"
    if code.holder_name:
        return f"{code.holder_name}'s {code.get_purpose_display().lower()} code"
    return f"the code “{code.name}”"


def _status(said: Said) -> str:
    new, note = str(said.data.get("to", "")), str(said.data.get("note", ""))
    code = said.activity.access_code if said.activity.access_code_id else None
    if new == CodeStatus.SETTING:
        if note == "due":
            return f"{said.whose} is being programmed"
        if note in ("retry requested", "new PIN"):
            return f"{said.whose} is being sent again"
        return f"{said.whose} is on its way to the lock"
    if new == CodeStatus.SET:
        how = SOURCE_WORDS.get(note, "confirmed")
        return f"{said.whose} is on the lock, {how}"
    if new == CodeStatus.UNSET and said.data.get("from") == CodeStatus.SETTING:
        return f"{said.whose} is scheduled on the lock; it opens the door from the start of its window"
    if new == CodeStatus.UNSET and code is not None and code.is_scheduled_on_device:
        return f"{said.whose} is scheduled on the lock"
    if new == CodeStatus.REMOVING:
        return f"{said.whose} is being removed" + (": its window ended" if note == "window ended" else "")
    if new == CodeStatus.REMOVED:
        return f"{said.whose} is off the lock"
    if new == CodeStatus.FAILED:
        return f"{said.whose} failed: {said.reason()}"
    return f"{said.whose} is now {new or 'changed'}"


def _command_target(said: Said) -> str:
    action = str(said.data.get("action", ""))
    if not action and said.activity.command_id and said.activity.command is not None:
        action = said.activity.command.action
    noun = ACTION_WORDS.get(action, "change")
    return noun if action in LOCK_WIDE_ACTIONS else f"{noun} of {said.whose}"


def _attempt(said: Said) -> str:
    attempt = said.data.get("attempt")
    return f" (try {attempt})" if isinstance(attempt, int) and attempt > 1 else ""


def _created(said: Said) -> str:
    starts, ends, program = said.when("starts_at"), said.when("ends_at"), said.when("program_at")
    text = f"{said.whose} planned"
    if starts and ends:
        text += f" for {starts} → {ends}"
    return text + (f"; programmed from {program}" if program else "")


def _changed(said: Said) -> str:
    starts, ends = said.when("starts_at"), said.when("ends_at")
    return f"{said.whose} moved to {starts} → {ends}" if starts and ends else f"{said.whose} changed"


def _reconciled(said: Said) -> str:
    counts = {key: len(said.data.get(key) or []) for key in ("matched", "repushed", "desynced")}
    if said.data.get("readable") is False:
        return "checked the lock: it cannot report its codes"
    return (f"checked the lock: {counts['matched']} code(s) match, {counts['repushed']} sent again, "
            f"{counts['desynced']} differ")


def _issue(verb: str) -> Callable[[Said], str]:
    def words(said: Said) -> str:
        kind = str(said.data.get("kind", ""))
        label = IssueKind(kind).label if kind in IssueKind.values else "a problem"
        subject = f" with {said.whose}" if said.activity.access_code_id else ""
        return {"opened": f"problem found{subject}: {label}", "resolved": f"problem solved{subject}: {label}",
                "dismissed": f"problem dismissed{subject}"}[verb]
    return words


def _actor(said: Said) -> str:
    actor = said.activity.actor if said.activity.actor_id else None
    return actor.get_username() if actor is not None else "someone"


# Activity.verb → the sentence (without the door, which `activity_sentence` puts in front).
WORDS: dict[str, Callable[[Said], str]] = {
    "code.status": _status,
    "code.created": _created,
    "code.changed": _changed,
    "code.missing": lambda s: f"{s.whose} was missing on the lock; programming it again",
    "code.retry_now": lambda s: f"retry of {s.whose} asked for",
    "code.remove_requested": lambda s: f"removal of {s.whose} asked for",
    "code.backup_handed_out": lambda s: f"a backup code already on the lock was handed out as {s.whose}",
    "code.new_pin": lambda s: f"new PIN asked for {s.whose}",
    "code.adopted": lambda s: f"{s.whose} found on the lock is now managed by Lockstep",
    "code.guest_notified": lambda s: f"guest told the PIN of {s.whose}",
    "code.first_used": lambda s: f"first entry with {s.whose}" + (f" at {s.when('at')}" if s.when("at") else ""),
    "lock.wrong_code": lambda s: "a wrong code was tried at the keypad",
    "guest.reported_code_not_working": lambda s: f"the guest says {s.whose} does not work; a read of the lock "
    "was queued",
    "guest.backup_shown": lambda s: f"the guest page showed {s.whose} after their report",
    "guest.link_created": lambda s: f"{_actor(s)} made a new guest page link (older links stop working)",
    "guest.link_revoked": lambda s: f"{_actor(s)} turned the guest page link off",
    "guest.page_viewed": lambda s: "the guest opened their page and saw their door codes",
    "booking.no_entry": lambda s: "the guest has not entered since check-in",
    "pin.regenerated": lambda s: f"new PIN made for {s.whose}",
    "pin.revealed": lambda s: f"{_actor(s)} looked at the PIN of {s.whose}",
    "command.queued": lambda s: f"{_command_target(s)} queued{_attempt(s)}",
    "command.sent": lambda s: f"{_command_target(s)} sent to the vendor{_attempt(s)}",
    "command.accepted": lambda s: f"the vendor accepted the {_command_target(s)}; waiting for the lock",
    "command.succeeded": lambda s: f"{_command_target(s)} {SOURCE_WORDS.get(str(s.data.get('source')), 'confirmed')}",
    "command.failed": lambda s: f"{_command_target(s)} failed: {s.reason()}",
    "command.timed_out": lambda s: f"{_command_target(s)} got no answer in time",
    "command.poll_failed": lambda s: f"could not ask the vendor about the {_command_target(s)}",
    "webhook.matched": lambda s: f"the vendor reported on {s.whose}",
    "issue.opened": _issue("opened"),
    "issue.resolved": _issue("resolved"),
    "issue.dismissed": _issue("dismissed"),
    "lock.reconcile_requested": lambda s: "a check of the lock was asked for",
    "lock.lead_changed": lambda s: (
        f"codes now go to the lock {s.data['to_minutes']} min before their window ({s.data.get('failed', 0)} of "
        f"its last {s.data.get('commands', 0)} commands failed)" if s.data.get("to_minutes")
        else "codes go to the lock at the standard time again: it has answered well lately"),
    "lock.reconciled": _reconciled,
    "lock.delete_all": lambda s: f"clearing the lock: {len(s.data.get('refs') or [])} code(s) to delete, "
    f"then {s.data.get('requeued', 0)} to program again",
    "lock.unmanaged_remove_queued": lambda s: "removal of a code Lockstep does not manage queued",
    "lock.offline": lambda s: "the lock went offline",
    "lock.online": lambda s: "the lock is back online",
    "alert.code_late": lambda s: f"alert mailed: {s.whose} is late",
    "alert.digest": lambda s: "daily digest mailed",
}


def activity_sentence(activity: Activity, tz_name: str) -> str:
    """The operator's sentence for one Activity row; rows of verbs without a table entry (members, keys,
    accounts: their messages are already written for people) read as their message."""
    words = WORDS.get(activity.verb)
    if words is None:
        return activity.message
    said = Said(activity=activity, tz_name=tz_name)
    text = words(said)
    text = text[:1].upper() + text[1:]
    return f"{said.door}: {text}" if said.door else text


def activity_details(activity: Activity) -> list[tuple[str, str]]:
    """The engine's own words for the details toggle: verb, message and refs (no times, no PINs)."""
    data = activity.data if isinstance(activity.data, dict) else {}
    rows = [("event", activity.verb), ("engine", activity.message)]
    rows += [(key, str(data[key])) for key in DETAIL_KEYS if data.get(key) not in (None, "", [])]
    return rows


def command_sentence(command: LockCommand) -> str:
    """One command of the lock page's log: what it was for whom, and where it stands."""
    code = command.access_code if command.access_code_id else None
    noun = ACTION_WORDS.get(command.action, "change")
    target = noun if command.action in LOCK_WIDE_ACTIONS else f"{noun} of {code_owner_words(code)}"
    state = STATE_WORDS.get(command.state, command.state)
    if command.state in (CommandState.FAILED, CommandState.TIMED_OUT) and command.reason:
        state += f": {REASON_WORDS.get(command.reason, 'see the open issues')}"
    text = f"{target} — {state}"
    return text[:1].upper() + text[1:]
