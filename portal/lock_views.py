"""Lock pages: the lock list, each lock's troubleshooting page, the issues list, and the one-click actions.

Actions are tables, not branches: an action name maps to the engine's service and to what it acts on.
Each is a POST that redirects back (so it works without JavaScript); the buttons carry `hx-post` with
`hx-select="main"`, so with htmx the page body is swapped in place after the redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from locks import actions
from locks.codes import lock_chooses_pin
from locks.conf import engine
from locks.lead import lead_explained
from locks.models import (
    DOOR_EVENT_VERBS,
    LIVE_CODE_STATUSES,
    SHOWN_CODE_STATUSES,
    AccessCode,
    Activity,
    CodeStatus,
    IssueKind,
    IssueStatus,
    Lock,
    LockIssue,
)
from locks.pin_change import code_current, pin_change_plan
from locks.pins import NoPinAvailable, PinRejected
from locks.selectors import codes_with_unknown_pin, lock_work
from locks.troubleshooting import ActionScope, action_for, playbook_for
from portal.http import TenantRequest
from portal.message_delivery import CODE_KINDS as CODE_MESSAGE_KINDS
from portal.models import Message, MessageStatus
from portal.people_code_views import people_codes
from portal.permissions import editor_required, visible_properties
from portal.query_params import parse_id
from portal.tenancy import get_for_tenant
from portal.throttles import pin_reveal_throttled
from portal.views import booking_context

COMMAND_LOG_SIZE = 50
ON_LOCK_STATUSES = (CodeStatus.SETTING, CodeStatus.SET, CodeStatus.REMOVING)


# Action name (locks.troubleshooting.ACTIONS says its label, scope and confirmation) → the engine's service.
SERVICES: dict[str, Callable[..., Any]] = {
    "retry_now": actions.code_retry_now,
    "reconcile": actions.lock_check_now,
    "reload_codes": actions.lock_reload_codes,
    "new_pin": actions.code_regenerate_pin,
    "adopt_code": actions.issue_adopt_code,
    "remove_code": actions.issue_remove_unmanaged_code,
    "dismiss": actions.issue_dismiss,
    "delete_all_and_reprogram": actions.lock_delete_all_and_reprogram,
}
DONE_MESSAGES: dict[str, str] = {
    "retry_now": "Sent again.",
    "reconcile": "A check of the lock is queued: its codes are read and compared with what should be there.",
    "reload_codes": "Queued: the lock will be asked to report all its codes.",
    "new_pin": "A new PIN is on its way to the doors. The guest is told it by message once every door holds it; "
    "a PIN they already know keeps working until then where the lock has room for both.",
    "adopt_code": "The code is now managed by Lockstep.",
    "remove_code": "Removal of the unmanaged code is queued; the lock is read again afterwards.",
    "dismiss": "Issue dismissed.",
    "delete_all_and_reprogram": "Queued: once the lock is free, every code on it is deleted and every live "
    "code programmed again, one at a time.",
}
# Lock-wide actions offered on every lock page, whatever its issues.
LOCK_ACTIONS = ("reconcile", "reload_codes")
CODE_ACTIONS = ("retry_now", "new_pin")


def _run(request: TenantRequest, name: str, extra: dict[str, Any] | None = None, **targets: Any) -> None:
    scope = action_for(name).scope
    try:
        SERVICES[name](**{str(scope): targets[scope]}, **(extra or {}), actor=request.user, now=timezone.now())
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except actions.TransitionError as error:
        # The engine refused (the code moved on meanwhile): say so, change nothing.
        messages.error(request, str(error))
    except PinRejected as error:  # the PIN shown in the preview was taken meanwhile, or a person's choice
        messages.error(request, "That PIN cannot go on: " + " ".join(error.errors) + " Nothing was changed.")
    except NoPinAvailable:
        messages.error(request, "No free PIN valid on every door was found. Nothing was changed.")
    else:
        messages.success(request, DONE_MESSAGES[name])


def _back(request: TenantRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    return redirect(target)


def _locks(request: TenantRequest):
    placed = Q(property__in=visible_properties(request))
    if request.membership.can_edit:
        placed |= Q(property__isnull=True)  # unassigned or no longer managed: staff still see the lock
    return Lock.objects.for_tenant(request.tenant).filter(placed)


def lock_list(request: TenantRequest) -> HttpResponse:
    locks = (
        _locks(request).filter(managed=True)
        .select_related("property", "provider_account")
        .annotate(
            open_issues=Count("issues", filter=Q(issues__status=IssueStatus.OPEN), distinct=True),
            live_codes=Count("access_codes", filter=Q(access_codes__status__in=LIVE_CODE_STATUSES), distinct=True),
        )
    )
    return render(request, "locks/lock_list.html", {"locks": locks})


def lock_detail(request: TenantRequest, lock_id: int) -> HttpResponse:
    lock = get_for_tenant(_locks(request).select_related("property", "provider_account", "tenant"), request.tenant,
                          pk=lock_id)
    # Bookings by their keys in a query of their own: joined, a lock with years of stays behind it makes the
    # planner misjudge how many codes it shows and read every booking of the tenant (bench: pages).
    codes = list(
        lock.access_codes.filter(status__in=SHOWN_CODE_STATUSES)
        .prefetch_related("booking")
        .order_by("starts_at", "id")
    )
    # A slot is taken by what is on (or going onto) the lock, not by codes still waiting for their time.
    live = sum(1 for code in codes if code.status in ON_LOCK_STATUSES or code.is_scheduled_on_device)
    capacity = (lock.requirements or {}).get("max_active_codes")
    issues = list(
        lock.issues.filter(status=IssueStatus.OPEN).select_related("access_code__booking", "command")
    )
    for issue in issues:
        issue.playbook = playbook_for(issue.kind)
        issue.buttons = [
            action for action in issue.playbook.action_list
            if action.scope != ActionScope.CODE or issue.access_code_id
        ]
    commands = list(
        lock.commands.select_related("access_code__booking").order_by("-id")[:COMMAND_LOG_SIZE]
    )
    last_check = (
        Activity.objects.filter(lock=lock, verb="lock.reconciled").order_by("-created_at", "-id").first()
    )
    # What happened at the door, where the lock reports it: guests' first entries and wrong codes tried.
    door_events = list(
        Activity.objects.filter(lock=lock, verb__in=DOOR_EVENT_VERBS).select_related("access_code__booking")
        .order_by("-created_at", "-id")[:DOOR_EVENTS_SHOWN]
    )
    seen = _observed(last_check.data if last_check else {})
    for code in codes:
        # An "on the lock" fact holds only if the read came after the code's last change (DESIGN §4).
        fresh = last_check is not None and last_check.created_at >= code.updated_at
        code.observed = seen.get(code.pk) if fresh else None
        code.unchecked = last_check is not None and not fresh and (
            code.pk in seen or code.status in (*ON_LOCK_STATUSES, CodeStatus.FAILED)
        )
    # Refs the read found unmanaged that a code of ours has taken since (adopted) are not foreign any more.
    ours = {code.vendor_code_ref for code in codes if code.vendor_code_ref}
    context = {
        "lock": lock,
        "codes": codes,
        "people_codes": people_codes(lock=lock),
        "last_check": last_check,
        "unmanaged": [ref for ref in (last_check.data.get("unmanaged", []) if last_check else []) if ref not in ours],
        "live": live,
        "capacity": capacity,
        "issues": issues,
        "commands": commands,
        "door_events": door_events,
        "lock_actions": [action_for(name) for name in LOCK_ACTIONS],
        "work": lock_work(lock=lock),
        "low_battery_level": engine().LOW_BATTERY_LEVEL,
        "now": timezone.now(),
        "failed_count": sum(1 for code in codes if code.status == CodeStatus.FAILED),
        "lead_note": lead_explained(lock),
    }
    return render(request, "locks/lock_detail.html", context)


DOOR_EVENTS_SHOWN = 10


# The last reconciliation's verdict per code (its Activity data lists code ids by outcome).
OBSERVED_LABELS = {
    "matched": ("set", "Matches the lock"),
    "repushed": ("failed", "Was missing; sent again"),
    "desynced": ("failed", "PIN on the lock differs"),
    "rescheduled": ("failed", "Window on the lock differed; sent again"),
}


def _observed(report: dict[str, Any]) -> dict[int, tuple[str, str]]:
    return {
        code_id: OBSERVED_LABELS[outcome]
        for outcome in OBSERVED_LABELS
        for code_id in report.get(outcome, [])
        if isinstance(code_id, int)
    }


@editor_required
@require_POST
def lock_action(request: TenantRequest, lock_id: int, action: str) -> HttpResponse:
    if action not in LOCK_ACTIONS:
        raise Http404("No such action.")
    lock = get_for_tenant(_locks(request), request.tenant, pk=lock_id)
    _run(request, action, lock=lock)
    return _back(request, reverse("locks:lock_detail", args=[request.tenant.slug, lock.pk]))


@dataclass(frozen=True)
class LostCode:
    """A code that clearing the lock would lose (PIN unknown), with what the form said about it."""

    code: AccessCode
    error: str = ""
    entered: str = ""
    dropped: bool = False


def _retried(request: TenantRequest, count: int) -> None:
    if count:
        messages.success(request, f"{count} failed code{'s' if count != 1 else ''} sent again; watch them on this page.")
    else:
        messages.info(request, "No failed code to retry.")


@editor_required
@require_POST
def lock_retry_failed(request: TenantRequest, lock_id: int) -> HttpResponse:
    """"Retry all failed" on one lock: every failed code takes the "retry now" path."""
    lock = get_for_tenant(_locks(request), request.tenant, pk=lock_id)
    _retried(request, actions.codes_retry_failed(lock=lock, actor=request.user, now=timezone.now()))
    return _back(request, reverse("locks:lock_detail", args=[request.tenant.slug, lock.pk]))


@editor_required
@require_POST
def property_retry_failed(request: TenantRequest, property_id: int) -> HttpResponse:
    """"Retry all failed" on every lock of a property."""
    prop = get_for_tenant(visible_properties(request), request.tenant, pk=property_id)
    _retried(request, actions.codes_retry_failed(property=prop, actor=request.user, now=timezone.now()))
    return _back(request, reverse("property_detail", args=[request.tenant.slug, prop.pk]))


@editor_required
@require_http_methods(["GET", "POST"])
def lock_delete_all(request: TenantRequest, lock_id: int) -> HttpResponse:
    """Clearing a lock is the heaviest fix there is, so it gets a page that says what will happen."""
    lock = get_for_tenant(_locks(request).select_related("property"), request.tenant, pk=lock_id)
    now = timezone.now()
    # Codes whose PIN Lockstep does not know cannot be put back: each needs its PIN or a "drop".
    unknown = list(codes_with_unknown_pin(lock=lock, now=now))
    errors: dict[str, list[str]] = {}
    pins: dict[int, str] = {}
    drop: set[int] = set()
    if request.method == "POST":
        pins = {code.pk: request.POST.get(f"pin_{code.pk}", "").strip() for code in unknown}
        drop = {code.pk for code in unknown if request.POST.get(f"drop_{code.pk}")}
        try:
            actions.lock_delete_all_and_reprogram(
                lock=lock, actor=request.user, now=now, pins={k: v for k, v in pins.items() if v}, drop=drop
            )
        except ValidationError as error:
            errors = error.message_dict
        except actions.TransitionError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, DONE_MESSAGES["delete_all_and_reprogram"])
        if not errors:
            return redirect("locks:lock_detail", request.tenant.slug, lock.pk)
    lost = [
        LostCode(code=code, error=" ".join(errors.get(str(code.pk), [])), entered=pins.get(code.pk, ""),
                 dropped=code.pk in drop)
        for code in unknown
    ]
    codes = (
        lock.access_codes.filter(status__in=[*LIVE_CODE_STATUSES, CodeStatus.FAILED])
        .exclude(status=CodeStatus.REMOVING)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .order_by("starts_at", "id")
    )
    # Mirrors the engine: codes not yet due stay queued for their time; the rest are sent again now.
    later = [c for c in codes if c.status == CodeStatus.UNSET and not c.is_scheduled_on_device]
    lost_ids = {c.pk for c in unknown}
    now_codes = [c for c in codes if c not in later and c.pk not in lost_ids]
    context = {
        "lock": lock,
        "now_codes": now_codes,
        "later": later,
        "lost": lost,
        "errors": errors,
        "action": action_for("delete_all_and_reprogram"),
    }
    return render(request, "locks/lock_delete_all.html", context, status=400 if errors else 200)


def issue_list(request: TenantRequest) -> HttpResponse:
    properties = visible_properties(request)
    issues = (
        LockIssue.objects.for_tenant(request.tenant)
        .filter(status=IssueStatus.OPEN, lock__property__in=properties)
        .select_related("lock__property", "access_code__booking")
    )
    kind = request.GET.get("kind", "")
    if kind in IssueKind.values:
        issues = issues.filter(kind=kind)
    property_id = request.GET.get("property", "")
    if (chosen := parse_id(property_id)) is not None:
        issues = issues.filter(lock__property_id=chosen)
    context = {
        "issues": issues[:200],
        "kinds": IssueKind.choices,
        "kind": kind,
        "properties": properties,
        "property_id": property_id,
    }
    return render(request, "locks/issue_list.html", context)


@editor_required
@require_POST
def issue_action(request: TenantRequest, issue_id: int, action: str) -> HttpResponse:
    issue = get_for_tenant(
        LockIssue.objects.filter(lock__property__in=visible_properties(request)).select_related("lock", "access_code"),
        request.tenant,
        pk=issue_id,
    )
    if action not in SERVICES or action not in playbook_for(issue.kind).actions:
        raise Http404("No such action for this issue.")
    lock_url = reverse("locks:lock_detail", args=[request.tenant.slug, issue.lock_id])
    if action_for(action).needs_confirmation:
        return redirect("locks:lock_delete_all", request.tenant.slug, issue.lock_id)
    targets = {"issue": issue, "lock": issue.lock, "code": issue.access_code}
    if targets[action_for(action).scope] is None:
        raise Http404("This issue has no code to act on.")
    extra: dict[str, Any] = {}
    if action == "adopt_code":
        # PINs staff entered for codes the lock could not tell (checked by the engine against its rules).
        extra["pins"] = {
            item["vendor_code_ref"]: request.POST.get(f"pin_{item['vendor_code_ref']}", "").strip()
            for item in issue.data.get("codes", []) if isinstance(item, dict) and item.get("vendor_code_ref")
        }
    _run(request, action, extra, **targets)
    return _back(request, lock_url)


def _code(request: TenantRequest, code_id: int) -> AccessCode:
    return get_for_tenant(
        AccessCode.objects.filter(lock__property__in=visible_properties(request)).select_related(
            "lock", "booking__property"
        ),
        request.tenant,
        pk=code_id,
    )


def lock_work_panel(request: TenantRequest, lock_id: int) -> HttpResponse:
    """The lock's queued and running lock-wide work; it polls itself while there is any."""
    lock = get_for_tenant(_locks(request), request.tenant, pk=lock_id)
    return render(request, "locks/lock_detail.html#work", {"lock": lock, "work": lock_work(lock=lock)})


def code_chip(request: TenantRequest, code_id: int) -> HttpResponse:
    """One code's status chip; it keeps polling itself while the code is in motion."""
    return render(request, "locks/code_chip.html#chip", {"code": _code(request, code_id)})


@editor_required
@require_POST
def code_action(request: TenantRequest, code_id: int, action: str) -> HttpResponse:
    if action not in CODE_ACTIONS:
        raise Http404("No such action.")
    code = _code(request, code_id)
    chosen = request.POST.get("pin", "").strip() if action == "new_pin" else ""
    _run(request, action, {"pin": chosen} if chosen else None, code=code)
    default = reverse("locks:lock_detail", args=[request.tenant.slug, code.lock_id])
    if code.booking_id:
        default = reverse("booking_detail", args=[request.tenant.slug, code.booking_id])
    return _back(request, default)


@require_POST
@pin_reveal_throttled  # 30 a minute per user, 429 + alert past that, never cached (portal/throttles.py)
def code_reveal(request: TenantRequest, code_id: int) -> HttpResponse:
    """Show one code's PIN. The service records every reveal in Activity (who, when)."""
    code = _code(request, code_id)
    pin = actions.code_reveal_pin(code=code, actor=request.user, now=timezone.now())
    if request.htmx:
        return render(request, "locks/code_chip.html#pin", {"code": code, "pin": pin})
    if code.booking is not None and request.membership.can_edit:
        return render(request, "portal/booking_detail.html", booking_context(code.booking, revealed={code.pk: pin}))
    return render(request, "locks/pin_revealed.html", {"code": code, "pin": pin})



@editor_required
@require_POST
@pin_reveal_throttled  # it shows the PIN the guest knows: a reveal, recorded and rate-limited like one
def code_new_pin_preview(request: TenantRequest, code_id: int) -> HttpResponse:
    """What New PIN would do, before it does it: the PIN the guest was told and when, the new PIN, which doors
    keep the old one working until the guest is told, and when they will be told. Confirming sends the PIN
    shown (checked again then)."""
    code = _code(request, code_id)
    back = reverse("booking_detail", args=[request.tenant.slug, code.booking_id]) if code.booking_id else \
        reverse("locks:lock_detail", args=[request.tenant.slug, code.lock_id])
    current = code_current(code)
    if current.status in (CodeStatus.REMOVING, CodeStatus.REMOVED) or lock_chooses_pin(current.lock):
        messages.error(request, "This code cannot get a new PIN" + (
            ": the lock chooses its own PINs." if lock_chooses_pin(current.lock) else ": it is being removed."))
        return redirect(back)
    try:
        plan = pin_change_plan(current)
    except (PinRejected, NoPinAvailable):
        messages.error(request, "No free PIN valid on every door was found. Nothing was changed.")
        return redirect(back)
    told_pin = current.pin if plan.told else ""
    if told_pin:
        actions.code_reveal_pin(code=current, actor=request.user, now=timezone.now())
    told_at = None
    if plan.told and current.booking_id:
        told_at = (Message.objects.filter(booking_id=current.booking_id, kind__in=CODE_MESSAGE_KINDS,
                                          status=MessageStatus.SENT).order_by("-sent_at").first())
    return render(request, "locks/new_pin_preview.html", {
        "code": current, "plan": plan, "told_pin": told_pin, "told_message": told_at, "back": back,
        "new_pin": next(iter(plan.pins)) if len(plan.pins) == 1 else "",
        "side_by_side": [door.code.lock.name for door in plan.doors if door.side_by_side],
        "in_place": [door.code.lock.name for door in plan.doors if not door.side_by_side],
        "doors": [door.code.lock.name for door in plan.doors],
    })
