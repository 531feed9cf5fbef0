"""Email alerts to a tenant's admins and staff, and a daily digest (DESIGN §7's attention queue, by mail).

Alerts go out for open issues that are urgent: a code still on the lock after check-out (overstay), a
code starting within 24 h that failed, a lock offline or with a low battery, a guest not told their code
whom guest messages escalated (no backup code to send instead). Each issue is mailed at most once (``LockIssue.alerted_at`` is claimed with a
conditional UPDATE, so two workers never both send it). A code that is merely late — its programming
time has passed but it is not on the lock, and it starts within 24 h — usually has no issue yet; those
are deduplicated with an ``alert.code_late`` Activity row per code. Tenants with
``alert_emails_enabled`` off get nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse

from locks.activity import activity_record
from locks.conf import engine
from locks.models import AccessCode, Activity, CodeStatus, IssueKind, IssueStatus, LockIssue
from locks.selectors import codes_not_on_lock
from portal.activity_words import code_owner_words
from portal.models import BookingFeed, Membership, Role, Tenant
from portal.times import ago, local_time
from providers.models import ProviderAccount

LOCK_ALERT_KINDS = (IssueKind.DEVICE_OFFLINE, IssueKind.LOW_BATTERY)
# Urgent whenever they are open: a guest's PIN that may still open the door after check-out, a guest at
# the door saying their code does not work, a guest not in hours after check-in (where asked for).
URGENT_KINDS = (IssueKind.OVERSTAY, IssueKind.GUEST_REPORTS_CODE_NOT_WORKING, IssueKind.NO_ENTRY)
# Issues about the guest rather than the code's window: the line says what the guest did (or did not).
GUEST_ISSUE_WORDS: dict[str, str] = {
    IssueKind.GUEST_REPORTS_CODE_NOT_WORKING: "says their code does not work",
    IssueKind.NO_ENTRY: "has not opened the door since check-in",
    IssueKind.GUEST_NOT_TOLD: "has not been told their code: the door has not confirmed it and no backup "
    "code is ready",
}


@dataclass(frozen=True)
class AlertLine:
    text: str
    url: str


def recipients(*, tenant: Tenant, roles: tuple[str, ...] = (Role.ADMIN, Role.STAFF)) -> list[str]:
    emails = (
        Membership.objects.for_tenant(tenant)
        .filter(role__in=roles, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    return sorted(set(emails))


def _soon(now: datetime) -> Q:
    """Codes that start within the attention window and have not ended."""
    return Q(starts_at__lte=now + engine().attention_window) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


def urgent_issues(*, tenant: Tenant, now: datetime) -> QuerySet[LockIssue]:
    failed_soon = Q(access_code__status=CodeStatus.FAILED) & Q(
        access_code__in=AccessCode.objects.filter(_soon(now))
    )
    # A guest not told their code becomes urgent when messages escalate it (no backup code to send).
    escalated = Q(kind=IssueKind.GUEST_NOT_TOLD, data__escalated=True)
    return (
        LockIssue.objects.for_tenant(tenant)
        .filter(status=IssueStatus.OPEN)
        .filter(Q(kind__in=LOCK_ALERT_KINDS + URGENT_KINDS) | failed_soon | escalated)
        .select_related("lock__property", "access_code__booking", "access_code__lock__property")
        .order_by("first_seen_at", "pk")
    )


def late_codes(*, tenant: Tenant, now: datetime) -> QuerySet[AccessCode]:
    """The attention rule's codes (locks.selectors) whose programming time is well past."""
    late_after = timedelta(minutes=engine().LATE_ALERT_MINUTES)
    return (
        codes_not_on_lock(AccessCode.objects.for_tenant(tenant), now=now)
        .filter(program_at__lte=now - late_after)
        .select_related("lock__property", "booking")
        .order_by("starts_at", "pk")
    )


def _lock_url(base: str, tenant: Tenant, lock_id: int) -> str:
    # The lock's page is the troubleshooting page: its open issues with the playbook and actions.
    return base + reverse("locks:lock_detail", args=[tenant.slug, lock_id])


def _zone(code: AccessCode) -> str:
    """The code's door's zone: its property's, or the tenant's for a lock not assigned to one."""
    prop = code.lock.property
    return prop.timezone if prop is not None else code.tenant.timezone


def _starts(code: AccessCode, now: datetime) -> str:
    """When the code starts, in its property's zone, as the pages write it ("Tue Jul 1, 15:00 EDT, in 3 h")."""
    if code.starts_at is None:
        return "it has no start"
    when = local_time(code.starts_at, _zone(code), now=now)
    return f"it starts {when} ({ago(code.starts_at, now=now)})"


def _ended(code: AccessCode, now: datetime) -> str:
    """When the code's window ended, in its property's zone ("Tue Jul 1, 11:00 EDT (2 h ago)")."""
    if code.ends_at is None:
        return "its window is open-ended"
    return f"{local_time(code.ends_at, _zone(code), now=now)} ({ago(code.ends_at, now=now)})"


def _issue_line(issue: LockIssue, base: str, tenant: Tenant, now: datetime) -> AlertLine:
    what = issue.get_kind_display()
    code = issue.access_code  # None without a query when the issue names no code
    if code is not None and issue.kind in GUEST_ISSUE_WORDS:
        what += f" — {code_owner_words(code)}: the guest {GUEST_ISSUE_WORDS[issue.kind]}"
    elif code is not None and issue.kind == IssueKind.OVERSTAY:
        what += f" — {code_owner_words(code)}: ended {_ended(code, now)}; its PIN may still open the door"
    elif code is not None:
        what += f" — {code_owner_words(code)}: {_starts(code, now)}"
    return AlertLine(f"{issue.lock.name}: {what}", _lock_url(base, tenant, issue.lock_id))


def _late_line(code: AccessCode, base: str, tenant: Tenant, now: datetime) -> AlertLine:
    return AlertLine(
        f"{code.lock.name}: {code_owner_words(code)} is not on the lock yet; {_starts(code, now)}",
        _lock_url(base, tenant, code.lock_id),
    )


def _send(
    tenant: Tenant, subject: str, intro: str, lines: list[AlertLine], *, roles: tuple[str, ...] = (Role.ADMIN, Role.STAFF)
) -> bool:
    to = recipients(tenant=tenant, roles=roles)
    if not to or not lines:
        return False
    body = "\n".join([intro, "", *(f"• {line.text}\n  {line.url}" for line in lines), "", "— Lockstep"])
    send_mail(f"[Lockstep] {subject}", body, settings.DEFAULT_FROM_EMAIL, to)
    return True


def alerts_send(*, now: datetime) -> int:
    """Mail each tenant once about its new urgent problems. Returns the number of mails sent."""
    base = settings.PUBLIC_BASE_URL
    sent = 0
    for tenant in Tenant.objects.filter(alert_emails_enabled=True).order_by("pk"):
        lines = []
        for issue in urgent_issues(tenant=tenant, now=now).filter(alerted_at__isnull=True):
            # Claim the issue; another worker that got here first has already mailed it.
            if LockIssue.objects.filter(pk=issue.pk, alerted_at__isnull=True).update(alerted_at=now):
                lines.append(_issue_line(issue, base, tenant, now))
        already = Activity.objects.for_tenant(tenant).filter(verb="alert.code_late").values("access_code_id")
        for code in late_codes(tenant=tenant, now=now).exclude(pk__in=already):
            activity_record(tenant_id=tenant.pk, code=code, verb="alert.code_late",
                            message=f"Alert mailed: code “{code.name}” is late", now=now)
            lines.append(_late_line(code, base, tenant, now))
        lines += unparsed_delivery_lines(tenant=tenant, now=now)
        count = len(lines)
        if _send(tenant, f"{count} lock problem{'s' if count != 1 else ''} need attention",
                 f"{tenant.name}: these need attention before guests arrive.", lines):
            sent += 1
    return sent


def alerts_send_soon() -> None:
    """Mail urgent problems after this commit rather than at the next five-minute run: a guest may be
    standing at the door. The task is the scheduled one (idempotent: each issue is claimed once)."""

    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task("portal.tasks.send_alerts")

    transaction.on_commit(enqueue)


UNPARSED_ALERT_EVERY = timedelta(days=1)


def unparsed_delivery_lines(*, tenant: Tenant, now: datetime) -> list[AlertLine]:
    """Accounts that received deliveries we could not read since their last alert, at most once a day
    per account. The claim is a conditional UPDATE, so two workers never both mail it."""
    base = settings.PUBLIC_BASE_URL
    due = (
        Q(unparsed_alerted_at__isnull=True) | Q(unparsed_alerted_at__lte=now - UNPARSED_ALERT_EVERY)
    ) & (Q(unparsed_alerted_at__isnull=True) | Q(last_unparsed_at__gt=F("unparsed_alerted_at")))
    lines = []
    for account in ProviderAccount.objects.for_tenant(tenant).filter(last_unparsed_at__isnull=False).filter(due):
        if not ProviderAccount.objects.filter(pk=account.pk).filter(due).update(unparsed_alerted_at=now):
            continue
        activity_record(tenant_id=tenant.pk, verb="alert.unparsed_deliveries", now=now,
                        message=f"Alert mailed: deliveries from “{account.name}” could not be read",
                        data={"account_id": account.pk, "count": account.unparsed_deliveries})
        lines.append(AlertLine(
            f"{account.name}: {account.unparsed_deliveries} webhook deliver"
            f"{'y' if account.unparsed_deliveries == 1 else 'ies'} Lockstep could not read "
            "(lock events in them were not applied)",
            base + reverse("providers:account_detail", args=[tenant.slug, account.uuid]),
        ))
    return lines


def digest_send(*, now: datetime) -> int:
    """One summary mail per tenant per day with what is still open; nothing when all is well."""
    base = settings.PUBLIC_BASE_URL
    today = now.date().isoformat()
    sent = 0
    for tenant in Tenant.objects.filter(alert_emails_enabled=True).order_by("pk"):
        if Activity.objects.for_tenant(tenant).filter(verb="alert.digest", data__day=today).exists():
            continue
        lines = [_issue_line(issue, base, tenant, now) for issue in urgent_issues(tenant=tenant, now=now)]
        lines += [_late_line(code, base, tenant, now) for code in late_codes(tenant=tenant, now=now)]
        other_open = (
            LockIssue.objects.for_tenant(tenant).filter(status=IssueStatus.OPEN).exclude(
                pk__in=urgent_issues(tenant=tenant, now=now).values("pk")
            ).count()
        )
        if other_open:
            lines.append(AlertLine(f"{other_open} other open issue(s) on locks",
                                   base + reverse("locks:issue_list", args=[tenant.slug])))
        failing = (BookingFeed.objects.for_tenant(tenant).exclude(last_error="")
                   .filter(property__archived_at__isnull=True).select_related("property")
                   .order_by("property__name", "label"))
        for feed in failing:
            lines.append(AlertLine(f"{feed.property.name}: iCal feed “{feed.label}” failing — {feed.last_error}",
                                   base + reverse("property_detail", args=[tenant.slug, feed.property_id])))
        if _send(tenant, f"Daily digest for {tenant.name}", f"{tenant.name}: still open today.", lines):
            activity_record(tenant_id=tenant.pk, verb="alert.digest", message="Daily digest mailed",
                            data={"day": today, "lines": len(lines)}, now=now)
            sent += 1
    return sent


def pin_reveal_burst_alert(
    *, tenant: Tenant, label: str, actor: User | None, limit: int, now: datetime
) -> None:
    """Someone asked for more PINs in a minute than anyone needs (portal/throttles.py calls this once per
    burst). Admins only: the revealer may be staff. Sent whatever ``alert_emails_enabled`` says, since a
    burst may be a stolen session or key rather than an operational matter."""
    activity_record(tenant_id=tenant.pk, verb="alert.pin_reveal_burst", actor=actor, now=now,
                    message=f"PIN reveals refused: {label} asked for more than {limit} in a minute",
                    data={"who": label, "limit": limit})
    activity = settings.PUBLIC_BASE_URL + reverse("dashboard", args=[tenant.slug])
    _send(tenant, f"Burst of PIN reveals by {label}",
          f"{tenant.name}: {label} asked for more than {limit} PINs within a minute. Further reveals are "
          "refused until the minute is over. If this was not expected, revoke their access or API key.",
          [AlertLine("Recent activity", activity)], roles=(Role.ADMIN,))
