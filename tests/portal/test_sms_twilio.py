"""Guest texts through Twilio's official library, tested at the HTTP edge (`responses`: nothing leaves
the machine): what is sent to the Messages API, Twilio's refusals in our words, a stay's code message by
text, and Twilio's signed delivery reports (RequestValidator) moving the message to bounced or failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses
import time_machine
from django.urls import reverse
from twilio.request_validator import RequestValidator

from locks.models import CodeStatus
from portal.messages import messages_send_due
from portal.models import Message, MessageStatus
from portal.sms import SmsError, TwilioSmsBackend
from tests import factories

SID = "AC" + "1" * 32
TOKEN = "twilio-test-token"
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
MARKER = "STUB-TEXT-4f7c2e9a"


@pytest.fixture
def twilio(settings):
    settings.SMS_BACKEND = "portal.sms.TwilioSmsBackend"
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM = "+15005550006"
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    with responses.RequestsMock() as rsps:
        yield rsps


def _created(sid="SM" + "a" * 32):
    return {"sid": sid, "status": "queued", "account_sid": SID, "to": "+351912345678", "from": "+15005550006",
            "body": "", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01"}


def test_it_posts_the_text_to_twilio_s_messages_api(twilio):
    twilio.add(responses.POST, API, json=_created(), status=201)

    sent = TwilioSmsBackend().send(to="+351912345678", body="Front door: 482913",
                                   status_callback="https://portal.example.com/sms/twilio/status/7/")

    assert sent.provider_id == "SM" + "a" * 32
    [call] = twilio.calls
    form = parse_qs(call.request.body)
    assert form == {"To": ["+351912345678"], "From": ["+15005550006"], "Body": ["Front door: 482913"],
                    "StatusCallback": ["https://portal.example.com/sms/twilio/status/7/"]}
    assert call.request.headers["Authorization"].startswith("Basic ")


def test_a_messaging_service_sends_from_its_pool(twilio, settings):
    settings.TWILIO_FROM = "MG" + "2" * 32
    twilio.add(responses.POST, API, json=_created(), status=201)

    TwilioSmsBackend().send(to="+351912345678", body="hello")

    assert parse_qs(twilio.calls[0].request.body)["MessagingServiceSid"] == ["MG" + "2" * 32]


def test_twilio_s_refusal_is_told_in_our_words(twilio):
    twilio.add(responses.POST, API, status=400, json={
        "code": 21211, "message": f"The 'To' number is not valid. {MARKER}", "status": 400})

    with pytest.raises(SmsError) as caught:
        TwilioSmsBackend().send(to="+1", body="hello")

    assert str(caught.value) == "Twilio refused the text (HTTP 400, error 21211)."
    assert MARKER not in str(caught.value)


def test_without_credentials_nothing_is_sent(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(SmsError, match="not configured"):
        TwilioSmsBackend()


@pytest.fixture
def stay(db):
    now = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)
    tenant = factories.TenantFactory(slug="coastline")
    prop = factories.PropertyFactory(tenant=tenant, name="Dune Cottage")
    lock = factories.LockFactory(tenant=tenant, property=prop, name="Front door")
    booking = factories.BookingFactory(tenant=tenant, property=prop, guest_name="Ana Costa",
                                       guest_phone="+351912345678", check_in=now + timedelta(hours=24),
                                       check_out=now + timedelta(days=3))
    factories.AccessCodeFactory(tenant=tenant, lock=lock, booking=booking, pin="482913", status=CodeStatus.SET)
    with time_machine.travel(now, tick=False):
        yield {"booking": booking, "now": now}


def _report(client, message_id, fields, *, token=TOKEN):
    path = reverse("twilio_status", args=[message_id])
    signature = RequestValidator(token).compute_signature("https://portal.example.com" + path, fields)
    return client.post(path, fields, headers={"X-Twilio-Signature": signature})


def test_a_stay_s_code_text_goes_through_twilio_and_its_delivery_report_comes_back(twilio, stay, client):
    twilio.add(responses.POST, API, json=_created("SM" + "b" * 32), status=201)

    messages_send_due(now=stay["now"])

    message = Message.objects.get()
    assert message.status == MessageStatus.SENT and message.provider_id == "SM" + "b" * 32
    form = parse_qs(twilio.calls[0].request.body)
    assert "Front door: 482913" in form["Body"][0]
    assert form["StatusCallback"] == [f"https://portal.example.com/sms/twilio/status/{message.pk}/"]
    assert "482913" not in message.body

    report = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert _report(client, message.pk, report, token="forged").status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT

    assert _report(client, message.pk, report).status_code == 204
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED and "30003" in message.error

    other = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "failed"}  # not this message's text
    assert _report(client, message.pk, other).status_code == 204
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED


def test_a_text_twilio_refuses_is_recorded_failed_and_the_code_not_marked_told(twilio, stay):
    twilio.add(responses.POST, API, status=400, json={"code": 21610, "message": MARKER, "status": 400})

    messages_send_due(now=stay["now"])

    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED and MARKER not in message.error
    assert not stay["booking"].access_codes.get().guest_notified


def test_texts_leave_through_the_guarded_outbound_path(twilio):
    twilio.add(responses.POST, API, body=requests.ConnectionError("refused"))

    with pytest.raises(SmsError) as caught:
        TwilioSmsBackend().send(to="+351912345678", body="hello")

    assert str(caught.value) == "Twilio could not be reached: The server could not be reached."
