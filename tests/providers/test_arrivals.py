"""Arrivals at the webhook edge (issue 13, acceptance 4): an unlock event in each vendor's documented shape,
signed as that vendor signs it and posted to the real webhook URL, records the code's first use and the
stay's first entry. Shapes: Seam `lock.unlocked` with `access_code_id` (seamapi/types lock events);
SmartThings `lock`/`lock` = "unlocked" with `data: {method: "keypad", codeId}` (the capability schema);
Nuki `DEVICE_LOGS` carrying a SmartlockLog (action 1, `authId`); Schlage `DeviceLockStateChanged` with an
access-code accessor (assumed, see providers/schlage.py); the simulator's own signed event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse
from django.utils import timezone

from locks.models import AccessCode, Activity, CodeStatus, IssueKind, IssueStatus, LockIssue
from portal.models import Booking
from providers.models import Vendor
from providers.nuki import nuki_signature
from providers.simulator import SIGNATURE_HEADER, sign
from tests import factories
from tests.providers.test_schlage import event_body as schlage_body
from tests.providers.test_schlage import sign as schlage_sign
from tests.providers.test_seam import SECRET as SEAM_SECRET
from tests.providers.test_seam import signed as seam_signed
from tests.providers.test_smartthings import device_event, lifecycle_event, public_pem, signed_headers

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
CHECK_IN = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
CHECK_OUT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ENTERED = "2026-12-01T15:12:00.000Z"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def stay_on(lock, ref: str) -> AccessCode:
    prop = lock.property or factories.PropertyFactory(tenant=lock.tenant, timezone="UTC")
    if lock.property_id is None:
        lock.property = prop
        lock.save(update_fields=["property"])
    booking = factories.BookingFactory(tenant=lock.tenant, property=prop, guest_name="Ana Costa",
                                       check_in=CHECK_IN, check_out=CHECK_OUT)
    return factories.AccessCodeFactory(tenant=lock.tenant, lock=lock, booking=booking, name="Ana Costa",
                                       pin="483926", starts_at=CHECK_IN, ends_at=CHECK_OUT,
                                       status=CodeStatus.SET, vendor_code_ref=ref)


def post(client, vendor: str, account, body: bytes, headers: dict, capture):
    url = reverse("webhooks:receive", args=[vendor, account.uuid])
    with capture(execute=True):
        response = client.post(url, data=body, content_type="application/json", headers=headers)
    assert response.status_code in (200, 202, 204), response.content
    return response


def assert_first_use(code: AccessCode, at: datetime) -> None:
    code.refresh_from_db()
    assert code.first_used_at == at
    assert Booking.objects.get(pk=code.booking_id).first_entry_at == at
    assert Activity.objects.filter(access_code=code, verb="code.first_used").count() == 1


def test_a_seam_unlock_with_an_access_code_sets_first_use(client, django_capture_on_commit_callbacks):
    account = factories.ProviderAccountFactory(vendor="seam", credentials={"api_key": "k"}, webhook_secret=SEAM_SECRET)
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="device_1")
    code = stay_on(lock, "ac_1")
    event = {"event_id": "ev_u1", "event_type": "lock.unlocked", "device_id": "device_1", "method": "keycode",
             "access_code_id": "ac_1", "connected_account_id": "ca_1", "workspace_id": "ws_1",
             "created_at": "2026-12-01T15:12:03.000Z", "occurred_at": ENTERED}
    body, headers = seam_signed(event, message_id="msg_u1")

    post(client, "seam", account, body, headers, django_capture_on_commit_callbacks)

    assert_first_use(code, datetime(2026, 12, 1, 15, 12, tzinfo=UTC))


def test_a_seam_unlock_without_an_access_code_is_no_ones_entry(client, django_capture_on_commit_callbacks):
    account = factories.ProviderAccountFactory(vendor="seam", credentials={"api_key": "k"}, webhook_secret=SEAM_SECRET)
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="device_1")
    code = stay_on(lock, "ac_1")
    event = {"event_id": "ev_u2", "event_type": "lock.unlocked", "device_id": "device_1", "method": "manual",
             "occurred_at": ENTERED}
    body, headers = seam_signed(event, message_id="msg_u2")

    post(client, "seam", account, body, headers, django_capture_on_commit_callbacks)

    code.refresh_from_db()
    assert code.first_used_at is None


def test_a_seam_access_denied_is_a_wrong_code_on_the_lock_page(client, django_capture_on_commit_callbacks):
    account = factories.ProviderAccountFactory(vendor="seam", credentials={"api_key": "k"}, webhook_secret=SEAM_SECRET)
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="device_1",
                                 name="Back door")
    event = {"event_id": "ev_d1", "event_type": "lock.access_denied", "device_id": "device_1",
             "occurred_at": ENTERED}
    body, headers = seam_signed(event, message_id="msg_d1")

    post(client, "seam", account, body, headers, django_capture_on_commit_callbacks)

    wrong = Activity.objects.get(lock=lock, verb="lock.wrong_code")
    assert "Back door" in wrong.message


def test_a_smartthings_keypad_unlock_names_the_slot_and_sets_first_use(
    client, rsa_key, django_capture_on_commit_callbacks
):
    account = factories.ProviderAccountFactory(vendor=Vendor.SMARTTHINGS,
                                               credentials={"token": "t", "public_key": public_pem(rsa_key)})
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="st-dev-1")
    code = stay_on(lock, "3")
    event = device_event("ev-lock-1", "lock", "lock", "unlocked", {"method": "keypad", "codeId": "3",
                                                                   "codeName": "Ana Costa"})
    event["deviceEvent"]["deviceId"] = "st-dev-1"
    event["eventTime"] = ENTERED
    body = json.dumps(lifecycle_event(event)).encode()
    url = reverse("webhooks:receive", args=["smartthings", account.uuid])
    headers = signed_headers(body, rsa_key, path=url)
    del headers["X-Lockstep-Request-Path"], headers["Content-Type"]

    post(client, "smartthings", account, body, headers, django_capture_on_commit_callbacks)

    assert_first_use(code, datetime(2026, 12, 1, 15, 12, tzinfo=UTC))


def test_a_nuki_log_entry_of_an_unlock_by_a_keypad_code_sets_first_use(client, django_capture_on_commit_callbacks):
    account = factories.ProviderAccountFactory(vendor="nuki", credentials={"api_token": "t"},
                                               webhook_secret="nuki-secret")
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="17")
    code = stay_on(lock, "5f3a9c")
    payload = {"feature": "DEVICE_LOGS", "smartlockLog": {
        "id": "64ab01", "smartlockId": 17, "deviceType": 0, "authId": "5f3a9c", "name": "Ana Costa",
        "action": 1, "trigger": 255, "state": 0, "autoUnlock": False, "date": ENTERED}}
    body = json.dumps(payload).encode()

    post(client, "nuki", account, body, {"X-Nuki-Signature-SHA256": nuki_signature(body, secret="nuki-secret")},
         django_capture_on_commit_callbacks)

    assert_first_use(code, datetime(2026, 12, 1, 15, 12, tzinfo=UTC))


def test_a_schlage_unlock_by_an_access_code_sets_first_use(client, rsa_key, django_capture_on_commit_callbacks):
    from cryptography.hazmat.primitives import serialization

    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    account = factories.ProviderAccountFactory(vendor=Vendor.SCHLAGE,
                                               credentials={"token": "t", "webhook_public_key": pem})
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="dev-8b1d")
    code = stay_on(lock, "ac-9")
    body = schlage_body("DeviceLockStateChanged", {"lockState": "Unlocked", "accessor": {
        "id": "ac-9", "friendlyName": "Ana Costa", "accessType": "AccessCode"}},
        time=NOW - timedelta(minutes=2))  # Schlage's deliveries must be fresh

    post(client, "schlage", account, body, schlage_sign(body, rsa_key), django_capture_on_commit_callbacks)

    assert_first_use(code, NOW - timedelta(minutes=2))


def test_a_simulated_lock_reports_the_guests_entry_through_the_same_path(client, django_capture_on_commit_callbacks):
    account = factories.ProviderAccountFactory(webhook_secret="sim-secret")
    lock = factories.LockFactory(tenant=account.tenant, provider_account=account, vendor_device_id="sim-1")
    code = stay_on(lock, "ac_sim-1-4")
    body = json.dumps({"event_id": "sim-1-arrival", "profile": "seam", "device_id": "sim-1", "type": "lock.unlocked",
                       "code_ref": "ac_sim-1-4", "vendor_ref": "", "reason": "", "clash_ref": "", "detail": "",
                       "pin": None, "occurred_at": "2026-12-01T15:12:00+00:00"}).encode()

    post(client, "simulator", account, body, {SIGNATURE_HEADER: f"sha256={sign(body, 'sim-secret')}"},
         django_capture_on_commit_callbacks)

    assert_first_use(code, datetime(2026, 12, 1, 15, 12, tzinfo=UTC))


def test_a_later_entry_keeps_the_first_and_an_earlier_late_report_moves_it_back(client, django_capture_on_commit_callbacks):
    from locks.arrivals import code_record_use

    lock = factories.LockFactory()
    code = stay_on(lock, "ac_1")
    first, later, earlier = (datetime(2026, 12, 1, h, m, tzinfo=UTC) for h, m in ((15, 30), (17, 0), (15, 12)))

    code_record_use(lock=lock, vendor_code_ref="ac_1", occurred_at=first, now=NOW)
    code_record_use(lock=lock, vendor_code_ref="ac_1", occurred_at=later, now=NOW)
    code_record_use(lock=lock, vendor_code_ref="ac_1", occurred_at=earlier, now=NOW)

    assert_first_use(code, earlier)


def test_the_no_entry_alert_fires_once_and_mails_staff(mailoutbox, clock):
    from locks.tick import tick
    from portal.alerts import alerts_send

    tenant = factories.TenantFactory()
    staff = factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(username="bob"))
    prop = factories.PropertyFactory(tenant=tenant, no_entry_alert_hours=2, timezone="UTC")
    lock = factories.LockFactory(tenant=tenant, property=prop)
    booking = factories.BookingFactory(tenant=tenant, property=prop, check_in=NOW - timedelta(hours=1),
                                       check_out=NOW + timedelta(days=2), guest_name="Ana Costa")
    factories.AccessCodeFactory(tenant=tenant, lock=lock, booking=booking, status=CodeStatus.SET,
                                starts_at=booking.check_in, ends_at=booking.check_out)

    assert tick(now=timezone.now()).flagged_no_entry == 0  # only 1 h after check-in
    clock.move_to(NOW + timedelta(hours=1, minutes=1))
    first = tick(now=timezone.now())
    again = tick(now=timezone.now() + timedelta(minutes=1))

    assert (first.flagged_no_entry, again.flagged_no_entry) == (1, 0)
    issue = LockIssue.objects.get(kind=IssueKind.NO_ENTRY)
    assert issue.status == IssueStatus.OPEN and issue.occurrences == 1
    assert alerts_send(now=timezone.now()) == 1 and alerts_send(now=timezone.now()) == 0
    assert len(mailoutbox) == 1 and staff.user.email in mailoutbox[0].to
    assert "has not opened the door" in mailoutbox[0].body


def test_no_entry_is_off_by_default_and_an_entry_resolves_it(clock):
    from locks.arrivals import booking_flag_no_entry, bookings_flag_no_entry, code_record_use

    prop = factories.PropertyFactory(timezone="UTC")
    lock = factories.LockFactory(tenant=prop.tenant, property=prop)
    code = stay_on(lock, "ac_7")
    assert bookings_flag_no_entry(now=NOW + timedelta(days=1), limit=10) == 0  # the property did not ask

    assert booking_flag_no_entry(booking=code.booking, now=NOW)
    code_record_use(lock=lock, vendor_code_ref="ac_7", occurred_at=NOW, now=NOW)

    assert LockIssue.objects.get(kind=IssueKind.NO_ENTRY).status == IssueStatus.RESOLVED
