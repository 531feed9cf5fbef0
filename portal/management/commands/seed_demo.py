"""Seeds the demo: "Seaside Stays" on the simulator, and "Harbor Homes" for mallory. Idempotent."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from locks.models import Lock
from portal.models import Booking, BookingSource, Membership, Property, Role, Tenant
from portal.services import BookingOverlap, booking_create
from providers.models import ProviderAccount, Vendor

DEMO_PASSWORD = "lockstep-demo"

# (name, address, zone, check-in, check-out, own buffers or None for the tenant's defaults)
# What the demo's guest pages say under the door codes.
DEMO_INSTRUCTIONS = (
    "Type your code on the keypad, then press the lock button.\n"
    "Parking: the first bay on the left. Wi-Fi details are on the fridge."
)
PROPERTIES: list[tuple[str, str, str, time, time, tuple[int, int] | None]] = [
    ("Dune Cottage", "12 Dune Road, Cape May, NJ", "America/New_York", time(15, 0), time(11, 0), None),
    ("Harbor View Loft", "3 Quay Street, Cape May, NJ", "America/New_York", time(16, 0), time(10, 0), None),
    ("Lighthouse Suite", "1 Lighthouse Lane, Cape May, NJ", "America/New_York", time(14, 0), time(11, 0), (60, 15)),
]

# (property index, device id, name, model, requirements, native scheduling, pin readable, simulator profile)
LOCKS: list[tuple[int, str, str, str, dict[str, Any], bool, bool, str]] = [
    (0, "sim-dune-front", "Dune front door", "Seam-like keypad",
     {"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 50, "constraints": [], "name_max_length": 32},
     True, True, "seam"),
    (0, "sim-dune-back", "Dune back door", "SmartThings-like Z-Wave lock",
     {"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 30, "constraints": [], "name_max_length": 20},
     False, False, "smartthings"),
    (1, "sim-harbor-front", "Harbor front door", "Nuki-like keypad",
     {"code_lengths": [6], "max_active_codes": 100, "constraints": ["no_zeros", "cannot_start_with_12"],
      "name_max_length": 20},
     False, True, "nuki"),
    (1, "sim-harbor-garage", "Harbor garage", "Schlage-like Encode",
     {"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 100, "constraints": ["unique_first_four_digits"],
      "name_max_length": 20},
     False, True, "schlage"),
    (2, "sim-lighthouse", "Lighthouse door", "SmartThings-like Z-Wave lock",
     {"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 30, "constraints": [], "name_max_length": 20},
     False, False, "smartthings"),
]

# Simulator faults per demo device (DESIGN §5 knobs); the rest answer in about 20 s and never fail.
DEMO_FAULTS: dict[str, dict[str, float]] = {
    "sim-harbor-garage": {"latency": 45, "timeout": 0.3, "nack": 0.3, "lost_webhook": 0.2},
}
DEMO_EXTERNAL_CODES: dict[str, dict[str, str]] = {"sim-lighthouse": {"Cleaner (set at the keypad)": "2580"}}

GUESTS = [
    "Ana Costa", "Ben Okafor", "Chloe Martin", "Dev Patel", "Emma Novak", "Finn Larsen", "Grace Liu",
    "Hugo Moreau", "Isla Byrne", "Jonas Weber", "Kira Sato", "Leo Romero", "Maya Cohen", "Noah Fischer",
    "Olga Ivanova", "Paulo Reis", "Quinn Avery", "Rosa Delgado", "Sam Whitaker", "Tara Singh",
]


class Command(BaseCommand):
    help = "Create the demo tenants, users, properties, simulated locks and bookings (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            seaside = self._tenant("Seaside Stays", "seaside", "America/New_York")
            harbor = self._tenant("Harbor Homes", "harbor", "Europe/Lisbon")
            alice = self._user("alice", "Alice Admin")
            bob = self._user("bob", "Bob Staff")
            olive = self._user("olive", "Olive Owner")
            mallory = self._user("mallory", "Mallory Admin")
            self._member(alice, seaside, Role.ADMIN)
            self._member(bob, seaside, Role.STAFF)
            olive_m = self._member(olive, seaside, Role.OWNER)
            self._member(mallory, harbor, Role.ADMIN)

            props = [
                Property.objects.get_or_create(
                    tenant=seaside, name=name,
                    defaults={"address": address, "timezone": tz, "checkin_time": checkin, "checkout_time": checkout,
                              "before_minutes": buffers[0] if buffers else None,
                              "after_minutes": buffers[1] if buffers else None,
                              "guest_instructions": DEMO_INSTRUCTIONS},
                )[0]
                for name, address, tz, checkin, checkout, buffers in PROPERTIES
            ]
            props[0].owners.add(olive_m)
            account, _ = ProviderAccount.objects.get_or_create(
                tenant=seaside, vendor=Vendor.SIMULATOR, name="Demo simulator", defaults={"credentials": {"seed": 7}}
            )
            for idx, device_id, name, model, req, native, readable, profile in LOCKS:
                Lock.objects.get_or_create(
                    provider_account=account,
                    vendor_device_id=device_id,
                    defaults={
                        "tenant": seaside, "property": props[idx], "name": name, "model": model,
                        "requirements": {**req, "simulator_profile": profile},
                        "native_scheduling": native, "pin_readable": readable,
                    },
                )
            self._simulated_devices(account)
            self._bookings(seaside, props, alice)

            harbor_prop, _ = Property.objects.get_or_create(
                tenant=harbor, name="Old Town Flat", defaults={"address": "Rua Augusta 1, Lisbon", "timezone": "Europe/Lisbon"}
            )
            harbor_account, _ = ProviderAccount.objects.get_or_create(
                tenant=harbor, vendor=Vendor.SIMULATOR, name="Harbor simulator", defaults={"credentials": {"seed": 11}}
            )
            Lock.objects.get_or_create(
                provider_account=harbor_account, vendor_device_id="sim-oldtown",
                defaults={"tenant": harbor, "property": harbor_prop, "name": "Old Town door",
                          "requirements": {"code_lengths": [6], "max_active_codes": 30, "constraints": [],
                                           "simulator_profile": "seam"},
                          "native_scheduling": True, "pin_readable": True},
            )
            self._simulated_devices(harbor_account)
            self._bookings(harbor, [harbor_prop], mallory, count=3)

        self.stdout.write(self.style.SUCCESS("Demo tenants ready."))
        self.stdout.write(
            f"Log in at http://127.0.0.1:8000/login/ with password {DEMO_PASSWORD!r} as:\n"
            "  alice   — admin, Seaside Stays\n"
            "  bob     — staff, Seaside Stays\n"
            "  olive   — owner of Dune Cottage, Seaside Stays\n"
            "  mallory — admin, Harbor Homes (another tenant)"
        )

    def _tenant(self, name: str, slug: str, tz: str) -> Tenant:
        return Tenant.objects.get_or_create(slug=slug, defaults={"name": name, "timezone": tz})[0]

    def _user(self, username: str, full_name: str) -> Any:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "first_name": full_name.split()[0],
                      "last_name": full_name.split()[-1]},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    def _member(self, user: Any, tenant: Tenant, role: str) -> Membership:
        return Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})[0]

    def _simulated_devices(self, account: ProviderAccount) -> None:
        """The virtual locks behind the demo's simulator account (profile from the lock's requirements).
        Most answer within half a minute; the garage fails often and the lighthouse door holds a cleaner's
        code set at the keypad, so the first reconciliation opens an issue to look at."""
        from providers.simulator import simulator_device_create

        for lock in account.locks.order_by("pk"):
            simulator_device_create(
                account=account, device_id=lock.vendor_device_id, name=lock.name,
                profile=lock.requirements.get("simulator_profile", "seam"), requirements=lock.requirements,
                faults=DEMO_FAULTS.get(lock.vendor_device_id, {"latency": 20}),
                external_codes=DEMO_EXTERNAL_CODES.get(lock.vendor_device_id),
            )

    def _bookings(self, tenant: Tenant, props: list[Property], actor: Any, count: int = 20) -> None:
        """Stays one after another per property (confirmed stays never overlap), at each property's own
        check-in and check-out times."""
        rng = random.Random(f"{tenant.slug}-demo")
        today = timezone.now().date()
        next_free = {prop.pk: today for prop in props}
        for n in range(count):
            ref = f"demo-{n + 1}"
            prop = props[n % len(props)]
            prop.refresh_from_db()  # get_or_create left the times as given, maybe strings
            tz = ZoneInfo(prop.timezone)
            nights = rng.randint(1, 4)
            # The first booking starts within the hour, so codes move as soon as the demo runs.
            if n == 0:
                check_in = timezone.now() + timedelta(minutes=50)
                arrival = check_in.astimezone(tz).date()
            else:
                arrival = next_free[prop.pk] + timedelta(days=rng.randint(0, 2))
                check_in = datetime.combine(arrival, prop.checkin_time, tzinfo=tz)
            departure = arrival + timedelta(days=nights)
            check_out = datetime.combine(departure, prop.checkout_time, tzinfo=tz)
            next_free[prop.pk] = departure
            if Booking.objects.filter(tenant=tenant, source=BookingSource.MANUAL, external_ref=ref).exists():
                continue
            guest = GUESTS[n % len(GUESTS)]
            try:
                booking_create(
                    tenant=tenant, property=prop, guest_name=guest,
                    guest_phone=f"+1 609 555 {rng.randint(1000, 9999)}",
                    guest_email=f"{guest.split()[0].lower()}@example.com",
                    check_in=check_in, check_out=check_out, external_ref=ref, actor=actor,
                )
            except BookingOverlap:
                continue  # seeded on another day: an earlier run's stay holds these dates
