"""Two PMS workers PUT the same reference at the same moment: one booking, one set of codes, no 5xx."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from locks.models import AccessCode
from portal.models import Booking
from tests.api.test_bookings import stay


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_of_one_reference_make_one_booking(api, keys, world):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    data = stay(world.dune)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def put() -> None:
        try:
            client = api(keys.bob)
            barrier.wait()
            statuses.append(client.put("/api/v1/bookings/by-ref/RACE-1/", data, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=put) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 200, 200, 201]
    booking = Booking.objects.get(external_ref="RACE-1")
    assert AccessCode.objects.filter(booking=booking).count() == 1
