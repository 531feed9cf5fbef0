"""The troubleshooting playbook, as data (DESIGN §4, STYLE "tables as data").

For every `IssueKind` a `Playbook`: what it means in plain words, the usual causes, the steps staff
should take in order, the one-click actions that apply (names from `ACTIONS`, which the engine
services implement) and what each vendor is known to do. Pages render it; nothing here decides.

`REASON_TO_ISSUE` maps each normalized `Reason` (providers/base.py) to the issue kind raised for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from locks.models import IssueKind
from providers.base import Reason


class Severity(StrEnum):
    CRITICAL = "critical"  # a guest may be locked out, or every lock on an account is stuck
    WARNING = "warning"  # a code may not be on the lock in time unless someone acts
    INFO = "info"  # worth knowing; Lockstep is handling it


class ActionScope(StrEnum):
    CODE = "code"  # acts on the issue's access code
    LOCK = "lock"  # acts on the whole lock
    ISSUE = "issue"  # acts on the issue itself (an unmanaged code, dismissing)


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    description: str
    scope: ActionScope
    needs_confirmation: bool = False
    confirmation: str = ""  # the question to ask when needs_confirmation


ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        action.name: action
        for action in (
            Action("retry_now", "Retry now", "Send this code to the lock again straight away, without waiting for the next retry.", ActionScope.CODE),
            Action("reconcile", "Check the lock", "Read the codes the lock reports and repair any difference from what should be on it.", ActionScope.LOCK),
            Action("reload_codes", "Reload all codes", "Ask the lock to report every code afresh, for when the vendor's list looks stale.", ActionScope.LOCK),
            Action("new_pin", "New PIN", "Give this code a new PIN and send it; tell the guest the new PIN if they already had the old one.", ActionScope.CODE),
            Action(
                "delete_all_and_reprogram", "Delete all and reprogram",
                "Clear every code from the lock, then send again every code that should be on it.",
                ActionScope.LOCK, needs_confirmation=True,
                confirmation=(
                    "Every code on this lock stops working until it is programmed again, which can take "
                    "several minutes per code. Guests inside keep the door open from the inside. Continue?"
                ),
            ),
            Action("adopt_code", "Keep and manage", "Take over this code found on the lock, so Lockstep tracks and removes it.", ActionScope.ISSUE),
            Action("remove_code", "Remove from lock", "Delete this code that Lockstep did not put on the lock.", ActionScope.ISSUE),
            Action("dismiss", "Dismiss", "Close this issue without doing anything; it comes back if the problem happens again.", ActionScope.ISSUE),
        )
    }
)


@dataclass(frozen=True)
class Playbook:
    kind: str
    title: str
    meaning: str
    causes: tuple[str, ...]
    steps: tuple[str, ...]
    actions: tuple[str, ...]
    vendor_notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    severity: Severity = Severity.WARNING

    @property
    def action_list(self) -> tuple[Action, ...]:
        return tuple(ACTIONS[name] for name in self.actions)


def _notes(**notes: str) -> Mapping[str, str]:
    return MappingProxyType(notes)


# Runbook phrases shared by several kinds, said the same way everywhere.
_TIMEOUT_STEPS = (
    "Check the lock's page: is it online, and when was it last seen?",
    "Check the Wi-Fi where the lock is: the router is on and the internet works (open a web page on a phone on that Wi-Fi).",
    "If the signal is weak at the door, move the access point or Wi-Fi bridge closer, or add a repeater.",
    "Reboot the router (and the lock's bridge or hub, if it has one), wait five minutes, then press Retry now.",
    "Replace the lock's batteries with new ones of the right type, even if they do not read as empty: weak batteries drop radio first.",
    "If it still times out, check the vendor's status page for an outage, then contact the vendor's support with the lock's name and the time of the failure.",
)
_SPLIT_BRAIN_STEPS = (
    "Press Check the lock to compare what the lock reports with what should be on it.",
    "If the problem stays, press Delete all and reprogram: it clears the lock and sends every live code again.",
    "If Lockstep cannot clear the lock, open the vendor's app, use its Delete All (access codes) on this lock, then press Check the lock.",
    "If codes still fail after that, factory-reset the lock following the vendor's manual, add it back in the vendor's app, and press Check the lock.",
    "Until it is fixed, give arriving guests another way in (a staff code or a key).",
)

_SCHLAGE_SPLIT_BRAIN = (
    "Schlage's cloud and the lock keep separate code lists and can disagree ('split brain'): 'Access code/code "
    "name are already in use', 'Access code ID not found on device' and 'User not found in the device' all "
    "mean this. There is no resync; the fix is Delete All in the Schlage Home app and reprogramming, and a "
    "factory reset if that fails."
)
_SCHLAGE_TIMEOUT = (
    "Schlage answers 202 at once and reports the outcome later; commands often time out on weak Wi-Fi or "
    "batteries. The cloud can take up to 20 minutes to mark a lock offline."
)
_SMARTTHINGS_SLOTS = (
    "Codes live in numbered slots. 'N failed' can name another slot: while we set slot 2, '1 failed' means "
    "the PIN we sent is already in slot 1. Reload all codes asks the lock for every slot; do not press it "
    "repeatedly, as each reload floods events."
)
_NUKI_RULES = "Keypad PINs are 6 digits, 1 to 9 only (no 0), must not start with 12, and must be unique on the lock."
_NUKI_423 = (
    "Nuki answers 423 (locked) while an earlier change to the same code is still running; Lockstep sends one "
    "change at a time per lock, so a 423 means something else (the Nuki app, another integration) is changing it."
)

PLAYBOOK: Mapping[str, Playbook] = MappingProxyType(
    {
        p.kind: p
        for p in (
            Playbook(
                kind=IssueKind.COMMAND_TIMEOUT,
                title="The lock did not answer in time",
                meaning=(
                    "The vendor accepted the change but never told us whether the lock did it. The code may "
                    "or may not be on the lock. Lockstep retries on its own; this issue stays open until it works."
                ),
                causes=(
                    "Weak Wi-Fi at the door, or the lock's bridge or hub is too far away.",
                    "The building's internet is down or flaky.",
                    "Weak batteries in the lock.",
                    "An outage at the lock vendor.",
                ),
                steps=_TIMEOUT_STEPS,
                actions=("retry_now", "reconcile", "dismiss"),
                vendor_notes=_notes(
                    schlage=_SCHLAGE_TIMEOUT,
                    smartthings="Commands are 'ACCEPTED' long before the lock reports; a hub that lost its Z-Wave or Zigbee link to the lock looks exactly like this.",
                    nuki="204 only means queued. Codes are not created while the lock is offline; Nuki falls back to a daily sync.",
                    seam="Seam warns 'delay_in_setting_on_device' / 'delay_in_removing_from_device' while it keeps trying.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.NACK,
                title="The lock never acknowledged the change",
                meaning=(
                    "The vendor sent the change to the lock but the lock never confirmed it (a 'Nack'). Treat "
                    "the code as not on the lock."
                ),
                causes=(
                    "The lock was asleep or out of radio range when the change arrived.",
                    "Weak batteries.",
                    "Interference or distance between the lock and its Wi-Fi bridge or hub.",
                ),
                steps=(
                    "Press Retry now; one missed acknowledgement is common.",
                    *_TIMEOUT_STEPS[1:5],
                    "If Nacks keep coming, contact the vendor's support with the lock's name and the times shown in the command log.",
                ),
                actions=("retry_now", "reconcile", "dismiss"),
                vendor_notes=_notes(
                    schlage="'Nack' is the Schlage runbook's word for a command the lock never acknowledged; public Schlage docs only show Failed or a timeout.",
                    smartthings="A Z-Wave lock that misses a command shows no 'N set' event; the driver may report 'N failed' later.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.DUPLICATE_PIN,
                title="The PIN is already on the lock",
                meaning=(
                    "The lock refused this PIN because another code on it already uses it — often one added "
                    "in the vendor's app or on the keypad, which Lockstep cannot see. It is never resent as is."
                ),
                causes=(
                    "A code was added outside Lockstep (vendor app, keypad, another integration) with the same PIN.",
                    "An old code was never removed from the lock.",
                ),
                steps=(
                    "If the guest has not been told the PIN yet, press New PIN: Lockstep picks another and sends it.",
                    "If the guest already has this PIN, press Check the lock to find the other code using it, remove that code, then press Retry now.",
                    "Ask whoever manages the lock in the vendor's app not to add codes there by hand.",
                ),
                actions=("new_pin", "reconcile", "retry_now", "dismiss"),
                vendor_notes=_notes(
                    smartthings=_SMARTTHINGS_SLOTS,
                    nuki="A duplicate keypad PIN is refused with 409.",
                    seam="Seam reports 'duplicate_code_on_device' or 'duplicate_code_attempt_prevented'.",
                    schlage="Schlage warns 'schlage_detected_duplicate'; PINs must also differ in their first four digits.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.DESYNC,
                title="The lock and the vendor's cloud disagree",
                meaning=(
                    "The vendor's cloud and the lock hold different codes ('split brain'), for example the "
                    "cloud says a code is in use or missing when the lock says otherwise. Changes will keep "
                    "failing until the lock is cleared and reprogrammed."
                ),
                causes=(
                    "Codes changed on the lock while it was offline, or a change was half applied.",
                    "Someone changed codes in the vendor's app or at the keypad.",
                    "A vendor bug; there is no resync on their side.",
                ),
                steps=_SPLIT_BRAIN_STEPS,
                actions=("reconcile", "delete_all_and_reprogram", "dismiss"),
                vendor_notes=_notes(
                    schlage=_SCHLAGE_SPLIT_BRAIN,
                    nuki="Nuki's web API is a cache of the lock; a stale one is refreshed by a sync. Deletes have been seen to answer 204 while the PIN stays.",
                    seam="Seam may show 'code_modified_external_to_seam' and set the code again on its own.",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.USER_NOT_FOUND,
                title="The lock does not know this code",
                meaning=(
                    "The vendor tried to change or delete a code that the lock says it does not have ('User "
                    "not found in the device'). This is the same cloud-versus-lock split as a desync."
                ),
                causes=(
                    "The code was removed at the lock or in the vendor's app.",
                    "The lock was reset or replaced without telling the vendor's cloud.",
                ),
                steps=_SPLIT_BRAIN_STEPS,
                actions=("reconcile", "delete_all_and_reprogram", "dismiss"),
                vendor_notes=_notes(schlage=_SCHLAGE_SPLIT_BRAIN),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.SCHEDULE_INVALID,
                title="The lock refused the code's dates",
                meaning=(
                    "The vendor answered 'Schedule parameters are not valid' for this code's start and end. "
                    "Why exactly is an open question with the vendor."
                ),
                causes=(
                    "The window starts in the past or ends before it starts, after a late date change.",
                    "The property's time zone or a daylight-saving change puts a time the lock cannot store.",
                    "A vendor limit on how far ahead a code can be scheduled.",
                ),
                steps=(
                    "Open the booking and check its check-in and check-out dates and times, and the property's time zone.",
                    "Correct the dates if they are wrong; Lockstep sends the code again.",
                    "If the dates are right, press Retry now once; if it fails again, report it to the vendor's support with the lock, the code's window and the time of the failure.",
                    "Until then, give the guest a staff code or a key for the stay.",
                ),
                actions=("retry_now", "dismiss"),
                vendor_notes=_notes(
                    schlage="Reported in an operator's Schlage runbook as an open question with Schlage. Seam also warns of a daylight-saving risk on Schlage codes and extends codes that cross the autumn change by an hour.",
                    seam="Kwikset (via Seam) requires a start date in the future ('start_date_in_future').",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.UNRECOGNIZED_JOB_STATE,
                title="The booking is not linked to this lock",
                meaning=(
                    "The vendor reported 'Unrecognized job state': the booking or unit the code belongs to is "
                    "not mapped to a lock on the vendor's side."
                ),
                causes=(
                    "The property or unit was not mapped to this lock in the vendor's or the channel manager's settings.",
                    "The lock was moved to another property or account.",
                ),
                steps=(
                    "Check that this lock belongs to the booking's property in Lockstep (the lock's page shows the property).",
                    "In the vendor's app or portal, check that the lock is linked to the same property or unit.",
                    "Fix the mapping, then press Retry now.",
                ),
                actions=("retry_now", "dismiss"),
                vendor_notes=_notes(schlage="Reported in an operator's Schlage runbook; not in Schlage's public documents."),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.SLOTS_FULL,
                title="The lock has no room for another code",
                meaning="The lock already holds as many codes as it can, so this code could not be added.",
                causes=(
                    "Old codes were never removed from the lock (added outside Lockstep, or left after a failure).",
                    "Many overlapping bookings, staff and backup codes on one lock.",
                ),
                steps=(
                    "Press Check the lock to list the codes on it; codes Lockstep did not add appear as issues.",
                    "Remove codes nobody needs (use Remove from lock on those issues, or the vendor's app).",
                    "Press Retry now on this code.",
                ),
                actions=("reconcile", "retry_now", "dismiss"),
                vendor_notes=_notes(
                    schlage="The Encode holds at most 100 codes.",
                    nuki="200 codes on Smart Lock 3.0 and later, 100 on 2.0.",
                    smartthings="The lock's 'maxCodes' is the number of slots; a code beyond it fails without a clear error.",
                    seam="Seam reports 'no_space_for_access_code_on_device' (older: 'smartthings_no_free_slots_available', 'august_device_slots_full').",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.INVALID_PIN,
                title="The lock refused the PIN",
                meaning=(
                    "The PIN breaks one of the lock's rules (length, digits it cannot have, patterns). Lockstep "
                    "checks the rules it knows before sending, so the lock has a rule we did not know of."
                ),
                causes=(
                    "The lock's code length was changed (Schlage locks take one length for all codes).",
                    "A vendor rule that the vendor does not report.",
                ),
                steps=(
                    "Press New PIN: Lockstep picks another PIN that fits the rules it knows.",
                    "If that fails too, check the PIN rules in the lock's manual or vendor app and report them to your Lockstep admin.",
                ),
                actions=("new_pin", "dismiss"),
                vendor_notes=_notes(
                    nuki=_NUKI_RULES,
                    schlage="4 to 8 digits, but every code on one lock has the same length, fixed by the first code; changing it means deleting all codes.",
                    smartthings="A change in the lock's code length makes the driver report every code deleted.",
                    seam="Seam lists the lock's 'code_constraints'; some locks ('cannot_specify_pin_code') choose the PIN themselves.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.DEVICE_OFFLINE,
                title="The lock is offline",
                meaning=(
                    "The vendor cannot reach the lock. Codes already on it keep working, but nothing can be "
                    "added, changed or removed until it is back."
                ),
                causes=(
                    "The building's internet or Wi-Fi is down.",
                    "The lock's bridge or hub is unplugged or out of range.",
                    "Flat batteries.",
                ),
                steps=(
                    "Check the internet at the property (ask someone on site, or check the router's app).",
                    "Check the lock's bridge or hub is plugged in and its light shows it is connected.",
                    "Replace the lock's batteries.",
                    "Once the lock is online again, Lockstep sends what is waiting on its own; press Check the lock to be sure.",
                    "If a guest arrives before it is back, give them a staff code or a key.",
                ),
                actions=("reconcile", "dismiss"),
                vendor_notes=_notes(
                    seam="Seam checks whether a device is online every 10 minutes.",
                    schlage="The cloud can take up to 20 minutes to mark a lock offline, so timeouts often come first.",
                    nuki="Nuki's serverState 4 means offline; codes are not created until it reconnects.",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.LOW_BATTERY,
                title="The lock's batteries are low",
                meaning="The batteries are running out. Weak batteries cause timeouts first, then the lock goes dead.",
                causes=("The batteries are old; locks with Wi-Fi drain them faster.",),
                steps=(
                    "Replace all of the lock's batteries with new ones of the type the manual names (not rechargeables unless allowed).",
                    "Check the keypad's batteries too, if it has its own.",
                    "The issue closes when the lock reports a good level.",
                ),
                actions=("dismiss",),
                vendor_notes=_notes(
                    nuki="Nuki reports 'batteryCritical' for the lock and 'keypadBatteryCritical' for the keypad separately.",
                ),
                severity=Severity.INFO,
            ),
            Playbook(
                kind=IssueKind.BUSY,
                title="The lock was busy",
                meaning=(
                    "The lock or vendor refused the change because another change was still running. "
                    "Lockstep retries on its own."
                ),
                causes=(
                    "Someone changed codes in the vendor's app or another integration at the same time.",
                    "A previous change is stuck at the vendor.",
                ),
                steps=(
                    "Wait a few minutes: Lockstep retries automatically.",
                    "Check that nobody else is changing this lock's codes (vendor app, another system).",
                    "If it stays busy, press Reload all codes once, wait ten minutes, then press Retry now.",
                ),
                actions=("retry_now", "reload_codes", "dismiss"),
                vendor_notes=_notes(
                    nuki=_NUKI_423,
                    smartthings="Locks run one operation at a time and answer 'busy' to a second one.",
                ),
                severity=Severity.INFO,
            ),
            Playbook(
                kind=IssueKind.RATE_LIMITED,
                title="The vendor asked us to slow down",
                meaning="The vendor refused requests for a while because too many were sent. Lockstep waits and retries.",
                causes=(
                    "Many changes to one lock in a short time (several date changes in a row, bulk imports).",
                    "Another system using the same vendor account.",
                ),
                steps=(
                    "Wait: Lockstep retries after the pause the vendor asked for.",
                    "Avoid repeated Retry now or Reload all codes presses for a few minutes.",
                    "If it keeps happening, check whether another integration uses the same vendor account.",
                ),
                actions=("dismiss",),
                vendor_notes=_notes(
                    seam="Per device: 10 creates, 10 updates and 20 deletes a minute; over that, 429.",
                    smartthings="20 executions a minute per installed app; 10 commands per request.",
                    nuki="No published limits, only abuse protection.",
                ),
                severity=Severity.INFO,
            ),
            Playbook(
                kind=IssueKind.AUTH_FAILED,
                title="The vendor rejected our credentials",
                meaning=(
                    "The vendor account's login or key no longer works, so no lock on this account can be "
                    "changed. Every lock on the account shows this."
                ),
                causes=(
                    "The password or API key was changed or revoked at the vendor.",
                    "The vendor's access token expired and could not be refreshed.",
                    "The account lost permission to these locks.",
                ),
                steps=(
                    "An admin opens Settings → Provider accounts: for an OAuth account (SmartThings, Schlage, Nuki Web) presses Reconnect the account and signs in at the vendor; otherwise enters fresh credentials and presses Test connection.",
                    "Once the test passes, press Retry now on failed codes (or wait for the next run).",
                    "If the credentials are right but still refused, contact the vendor's support.",
                ),
                actions=("retry_now", "dismiss"),
                vendor_notes=_notes(
                    smartthings="SmartThings tokens expire and refresh failures have been seen; reinstalling the SmartApp may be needed.",
                    seam="Seam reports 'account_disconnected' when the lock brand's own login stopped working; reconnect it in Seam.",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.UNMANAGED_CODE,
                title="A code on the lock was not added by Lockstep",
                meaning=(
                    "The lock has a code that Lockstep did not put there. It may be an owner's or cleaner's "
                    "code, or a leftover that still opens the door."
                ),
                causes=(
                    "Someone added a code in the vendor's app or at the keypad.",
                    "A code from a previous system or an old booking was never removed.",
                ),
                steps=(
                    "Find out whose code it is (its name on the lock usually tells).",
                    "If it is needed, press Keep and manage so Lockstep tracks it.",
                    "If nobody needs it, press Remove from lock.",
                    "If it is known and should stay outside Lockstep, press Dismiss.",
                ),
                actions=("adopt_code", "remove_code", "dismiss"),
                vendor_notes=_notes(
                    smartthings="A code in a slot we use may be someone else's: slot names are all we can read.",
                    seam="Seam marks codes it did not create as 'unmanaged'.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.OVERSTAY,
                title="Still on the lock after check-out",
                meaning=(
                    "The stay has ended but the guest's code is still on the lock, or its removal has not been "
                    "confirmed: the guest's PIN may still open the door. The issue closes by itself once the "
                    "lock confirms the code is gone."
                ),
                causes=(
                    "The lock is offline or out of Wi-Fi range, so the delete has not reached it.",
                    "The vendor accepted the delete but never confirmed it.",
                    "The delete failed (the lock and the vendor's cloud disagree about the code).",
                ),
                steps=(
                    "Press Retry now to send the delete again (or ask the vendor about the one in flight).",
                    "If it is still there, delete the code in the vendor's app (or at the lock's keypad, if it allows it).",
                    "Press Check the lock: when the lock no longer reports the code, this issue closes.",
                    "Until it is gone, treat the door as open to the last guest: check the property and, if needed, change the lock's other codes.",
                ),
                actions=("retry_now", "reconcile"),
                vendor_notes=_notes(
                    schlage=_SCHLAGE_TIMEOUT,
                    nuki="Nuki removes the authorization on the lock's next sync; an offline lock keeps it until then.",
                    smartthings="The slot stays taken until the lock reports 'deleted'; a hub that lost the lock cannot clear it.",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.GUEST_REPORTS_CODE_NOT_WORKING,
                title="The guest says their code does not work",
                meaning=(
                    "The guest pressed “My code doesn't work” on their page. Lockstep has already asked the "
                    "lock which codes it holds and, where the lock keeps backup codes, shown the guest one that "
                    "is on the door. The guest may be standing outside now."
                ),
                causes=(
                    "The code is not on the lock (yet): it failed, or the lock has not confirmed it.",
                    "The guest is early: the code's window has not started.",
                    "The guest types it wrongly (a missing digit, or the lock wants a confirm key such as ✓ or #).",
                    "The lock's batteries are weak, or its keypad lost its link to the lock.",
                ),
                steps=(
                    "Call or message the guest now (their details are on the booking page).",
                    "Check the code's status on this page: if it is not “set”, press Retry now.",
                    "When the read of the lock ends, compare what the lock reports with what should be on it.",
                    "If a backup code was handed out, tell the guest to use it; otherwise give another way in (a staff code or a key).",
                    "If the lock holds the code and it still fails, replace the batteries and check the keypad.",
                ),
                actions=("retry_now", "reconcile", "new_pin", "dismiss"),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.NO_ENTRY,
                title="The guest has not entered",
                meaning=(
                    "Check-in was hours ago and the lock has not reported the guest's code opening the door. "
                    "They may be late, or they may be stuck outside."
                ),
                causes=(
                    "The guest is simply late or changed plans.",
                    "The code is not on the lock, or the guest cannot make it work.",
                    "The lock does not report every unlock (offline, or the vendor reports entries late).",
                ),
                steps=(
                    "Check that each door's code is set on this page.",
                    "Contact the guest to ask whether they have arrived.",
                    "If they cannot get in, give them a backup code or another way in.",
                    "Dismiss this issue once you know they are fine.",
                ),
                actions=("retry_now", "reconcile", "dismiss"),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.GUEST_NOT_TOLD,
                title="The guest has not been told their code",
                meaning=(
                    "It is time to send the guest their door codes, but this door has not confirmed the "
                    "guest's code, so Lockstep holds the message: a guest is never sent a PIN that is not on "
                    "the door. The message goes out by itself once every door confirms. Closer to check-in "
                    "the guest gets a backup code where the door keeps a pool; otherwise staff are alerted."
                ),
                causes=(
                    "The code is still on its way to the lock (slow vendor, weak Wi-Fi, a queue of commands).",
                    "The code failed on this door: see its other open issue.",
                    "The lock is offline or its batteries are weak.",
                ),
                steps=(
                    "Check the code's status on this page: if it failed or is stuck, press Retry now.",
                    "Press Check the lock to read what the lock holds.",
                    "If check-in is close, hand out a backup code from the booking page, or give the guest "
                    "another way in and tell them yourself.",
                ),
                actions=("retry_now", "reconcile", "dismiss"),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.PIN_SPLIT,
                title="The guest has different PINs on different doors",
                meaning=(
                    "The booking's doors should share one PIN, but no single new PIN is valid and free on every "
                    "door, so each door got its own. The guest must be told each door's PIN."
                ),
                causes=(
                    "The locks accept different PIN lengths or have different rules.",
                    "A door is crowded: the PINs that fit the other doors are taken there.",
                ),
                steps=(
                    "Tell the guest the PIN of each door (the booking page lists them).",
                    "Or remove old codes from the crowded door and press New PIN to try one PIN for every door again.",
                ),
                actions=("new_pin", "dismiss"),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.VENDOR_ERROR,
                title="The vendor reported an error",
                meaning="The vendor's service failed or answered something we could not understand. Lockstep retries on its own.",
                causes=("An outage or bug at the vendor.", "A change at the vendor that Lockstep does not know yet."),
                steps=(
                    "Wait a few minutes: Lockstep retries automatically.",
                    "Check the vendor's status page.",
                    "If it persists, contact the vendor's support with the error shown in the command log and its time.",
                ),
                actions=("retry_now", "reconcile", "dismiss"),
                vendor_notes=_notes(
                    seam="Seam's 'provider_issue' means the lock brand's own cloud failed.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.KEYPAD_DISCONNECTED,
                title="The lock's keypad is disconnected",
                meaning=(
                    "The keypad that guests type their code on has lost its connection to the lock. Codes may "
                    "be stored correctly, yet nobody can use them at the door."
                ),
                causes=(
                    "Flat keypad batteries (many keypads have their own).",
                    "The keypad was moved out of range, removed or damaged.",
                    "The keypad lost its pairing after a lock reset or firmware update.",
                ),
                steps=(
                    "Ask someone on site to check the keypad lights up when touched.",
                    "Replace the keypad's batteries.",
                    "If it still does not connect, pair the keypad with the lock again in the vendor's app.",
                    "Until it is back, give arriving guests another way in (a staff code on another door, a key).",
                    "The issue closes when the vendor reports the keypad connected again.",
                ),
                actions=("dismiss",),
                vendor_notes=_notes(
                    seam="Seam sends device.accessory_keypad_disconnected, and device.accessory_keypad_connected when it is back.",
                    nuki="The Nuki Keypad is a separate device with its own batteries ('keypadBatteryCritical').",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.DEVICE_TAMPERED,
                title="The lock reports tampering",
                meaning="The lock detected that it was opened, moved or forced. Check the door before the next guest arrives.",
                causes=(
                    "Someone tried to force or remove the lock.",
                    "Maintenance opened the lock's housing (battery change, repair).",
                    "A loose mounting or a faulty sensor.",
                ),
                steps=(
                    "Ask someone on site to check the door and the lock for damage.",
                    "If it was maintenance, confirm who and when, then press Dismiss.",
                    "If the lock was damaged or forced, secure the door and contact the owner.",
                    "Press Check the lock afterwards to make sure its codes are still the right ones.",
                ),
                actions=("reconcile", "dismiss"),
                vendor_notes=_notes(
                    seam="Seam sends device.tampered; it has no all-clear event, so this issue stays until dismissed.",
                ),
                severity=Severity.CRITICAL,
            ),
            Playbook(
                kind=IssueKind.THIRD_PARTY_INTEGRATION,
                title="Another system is managing this lock",
                meaning=(
                    "The vendor detected another integration on this lock that interferes with code management. "
                    "Codes Lockstep sets may be changed or removed by it."
                ),
                causes=(
                    "A previous property-management or smart-home system is still connected to the lock.",
                    "The owner connected the lock to another service.",
                ),
                steps=(
                    "Find out which other system is connected (ask the owner; check the vendor's app for linked services).",
                    "Disconnect that system from the lock, or agree that it stops managing codes.",
                    "Press Check the lock to see what is on it now.",
                    "The issue closes when the vendor no longer detects the other integration.",
                ),
                actions=("reconcile", "dismiss"),
                vendor_notes=_notes(
                    seam="Seam sends device.third_party_integration_detected, and ..._no_longer_detected when it is gone.",
                ),
                severity=Severity.WARNING,
            ),
            Playbook(
                kind=IssueKind.SUBSCRIPTION_REQUIRED,
                title="The lock brand requires a subscription",
                meaning=(
                    "The lock's maker requires a paid subscription for remote code management. Until it is active, "
                    "codes may not be set or removed."
                ),
                causes=(
                    "The subscription at the lock brand lapsed or was never taken.",
                    "The lock was moved to an account without a subscription.",
                ),
                steps=(
                    "An admin checks the subscription in the lock brand's app or website and renews it.",
                    "Once it is active, press Check the lock, then Retry now on codes that failed meanwhile.",
                    "The issue closes when the vendor reports the subscription is no longer required.",
                ),
                actions=("reconcile", "dismiss"),
                vendor_notes=_notes(
                    seam="Seam sends device.error.subscription_required, and ....resolved when it is active again.",
                ),
                severity=Severity.CRITICAL,
            ),
        )
    }
)


REASON_TO_ISSUE: Mapping[str, str] = MappingProxyType(
    {
        Reason.TIMEOUT: IssueKind.COMMAND_TIMEOUT,
        Reason.NACK: IssueKind.NACK,
        Reason.DEVICE_OFFLINE: IssueKind.DEVICE_OFFLINE,
        Reason.BUSY: IssueKind.BUSY,
        Reason.RATE_LIMITED: IssueKind.RATE_LIMITED,
        Reason.VENDOR_ERROR: IssueKind.VENDOR_ERROR,
        Reason.DUPLICATE_PIN: IssueKind.DUPLICATE_PIN,
        Reason.INVALID_PIN: IssueKind.INVALID_PIN,
        Reason.SCHEDULE_INVALID: IssueKind.SCHEDULE_INVALID,
        Reason.SLOTS_FULL: IssueKind.SLOTS_FULL,
        Reason.NOT_FOUND_ON_DEVICE: IssueKind.DESYNC,
        Reason.UNRECOGNIZED_JOB_STATE: IssueKind.UNRECOGNIZED_JOB_STATE,
        Reason.AUTH_FAILED: IssueKind.AUTH_FAILED,
        Reason.DESYNC: IssueKind.DESYNC,
        Reason.USER_NOT_FOUND: IssueKind.USER_NOT_FOUND,
        # The vendor cannot do what we asked at all; staff see it as a vendor error with its words.
        Reason.UNSUPPORTED: IssueKind.VENDOR_ERROR,
    }
)


def issue_kind_for_reason(reason: str) -> str:
    """The IssueKind raised for a normalized reason; an unknown reason is a vendor error."""
    return REASON_TO_ISSUE.get(reason, IssueKind.VENDOR_ERROR)


def playbook_for(kind: str) -> Playbook:
    """The playbook for an issue kind. A kind this version does not know (an old row) gets the generic
    vendor-error playbook, so a page never fails on it."""
    return PLAYBOOK.get(kind, PLAYBOOK[IssueKind.VENDOR_ERROR])


def action_for(name: str) -> Action:
    """The action called `name`; KeyError for names that are not in ACTIONS."""
    return ACTIONS[name]
