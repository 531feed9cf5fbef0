"""Turnover codes: on a property that opts in, a cleaner's code on every lock from one stay's check-out
to the next stay's check-in, following the stays as they are booked, moved and cancelled."""

from __future__ import annotations

from datetime import timedelta

from locks.models import AccessCode, CodeStatus
from locks.tick import tick
from portal.models import Property
from portal.properties import property_update
from portal.services import booking_cancel, booking_create, booking_update
from tests.locks.conftest import T0


def _book(place, *, days: int, nights: int, name: str):
    check_in = T0 + timedelta(days=days)
    return booking_create(tenant=place.tenant, property=place.property, guest_name=name, check_in=check_in,
                          check_out=check_in + timedelta(days=nights), now=T0)


def _turnover(*statuses):
    live = AccessCode.objects.filter(purpose="turnover").order_by("lock_id")
    return list(live.filter(status__in=statuses) if statuses else live.exclude(status=CodeStatus.REMOVED))


def _opt_in(place):
    Property.objects.filter(pk=place.property.pk).update(turnover_codes=True)
    place.property.refresh_from_db()


def test_two_consecutive_stays_give_the_cleaner_a_code_for_the_gap_on_every_lock(place, cloud):
    _opt_in(place)
    first = _book(place, days=5, nights=3, name="Ana")
    assert _turnover() == []  # one stay: no gap yet
    second = _book(place, days=10, nights=2, name="Ben")

    codes = _turnover()
    assert {c.lock_id for c in codes} == {place.native.pk, place.jit.pk}
    for code in codes:
        assert (code.starts_at, code.ends_at) == (first.check_out, second.check_in)
        assert code.booking_id is None and code.holder_name == "Turnover clean"
        assert code.status == CodeStatus.UNSET  # programmed at the lock's lead like a guest's
    assert codes[0].pin == codes[1].pin

    jit = next(c for c in codes if c.lock_id == place.jit.pk)
    tick(now=jit.program_at)
    jit.refresh_from_db()
    assert jit.status == CodeStatus.SET
    tick(now=jit.ends_at)
    jit.refresh_from_db()
    assert jit.status == CodeStatus.REMOVED


def test_a_date_change_moves_the_gap_and_a_cancellation_closes_it(place, cloud):
    _opt_in(place)
    first = _book(place, days=5, nights=3, name="Ana")
    second = _book(place, days=10, nights=2, name="Ben")
    [before] = _turnover()[:1]

    moved_in = second.check_in + timedelta(days=1)
    booking_update(booking=second, check_in=moved_in, check_out=moved_in + timedelta(days=2), now=T0)
    codes = _turnover()
    assert len(codes) == 2 and before.pk in {c.pk for c in codes}  # the same codes, moved
    assert {(c.starts_at, c.ends_at) for c in codes} == {(first.check_out, moved_in)}

    booking_update(booking=first, check_out=first.check_out + timedelta(days=1), now=T0)
    assert {(c.starts_at, c.ends_at) for c in _turnover()} == {(first.check_out + timedelta(days=1), moved_in)}

    booking_cancel(booking=second, now=T0)
    assert _turnover() == []


def test_a_stay_booked_into_the_gap_splits_it_in_two(place, cloud):
    _opt_in(place)
    first = _book(place, days=5, nights=2, name="Ana")
    last = _book(place, days=20, nights=2, name="Cy")
    middle = _book(place, days=10, nights=2, name="Ben")
    assert {(c.starts_at, c.ends_at) for c in _turnover()} == {
        (first.check_out, middle.check_in), (middle.check_out, last.check_in)}
    assert len(_turnover()) == 4


def test_a_property_that_has_not_opted_in_gets_none_and_opting_out_removes_them(place, cloud):
    _book(place, days=5, nights=3, name="Ana")
    _book(place, days=10, nights=2, name="Ben")
    assert _turnover() == []

    property_update(prop=place.property, actor=None, now=T0, turnover_codes=True)
    assert len(_turnover()) == 2
    property_update(prop=place.property, actor=None, now=T0, turnover_codes=False)
    assert _turnover() == []


def test_staff_see_the_turnover_codes_on_the_property_page_but_cannot_edit_them(place, cloud, client):
    from django.urls import reverse

    from portal.models import Role
    from tests import factories
    from tests.conftest import client_for

    _opt_in(place)
    _book(place, days=5, nights=3, name="Ana")
    _book(place, days=10, nights=2, name="Ben")
    bob = factories.UserFactory(username="bob")
    factories.MembershipFactory(user=bob, tenant=place.tenant, role=Role.STAFF)
    page = client_for(client, bob).get(reverse("property_detail", args=[place.tenant.slug, place.property.pk]))
    body = page.content.decode()
    assert body.count("Turnover clean") == 2 and "follows the stays" in body
    code = _turnover()[0]
    assert client.get(reverse("locks:people_code_edit", args=[place.tenant.slug, code.pk])).status_code == 404
