from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from locks.models import AccessCode, Lock, LockCommand, LockIssue
from portal.models import Booking, Membership, Property, Role, Tenant
from providers.models import ProviderAccount, Vendor


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    timezone = "America/New_York"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.STAFF


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Property {n}")
    timezone = "America/New_York"


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    tenant = factory.SubFactory(TenantFactory)
    vendor = Vendor.SIMULATOR
    name = factory.Sequence(lambda n: f"Account {n}")
    credentials = factory.LazyFunction(lambda: {"seed": 1})


class LockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lock

    tenant = factory.SubFactory(TenantFactory)
    property = factory.SubFactory(PropertyFactory, tenant=factory.SelfAttribute("..tenant"))
    provider_account = factory.SubFactory(ProviderAccountFactory, tenant=factory.SelfAttribute("..tenant"))
    vendor_device_id = factory.Sequence(lambda n: f"device-{n}")
    name = factory.Sequence(lambda n: f"Door {n}")
    requirements = factory.LazyFunction(
        lambda: {"code_lengths": [4, 5, 6, 7, 8], "max_active_codes": 30, "constraints": []}
    )


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Booking

    tenant = factory.SubFactory(TenantFactory)
    property = factory.SubFactory(PropertyFactory, tenant=factory.SelfAttribute("..tenant"))
    guest_name = factory.Sequence(lambda n: f"Guest {n}")
    check_in = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    check_out = factory.LazyAttribute(lambda o: o.check_in + timedelta(days=3))


class AccessCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessCode

    tenant = factory.SubFactory(TenantFactory)
    lock = factory.SubFactory(LockFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"Guest code {n}")
    pin = factory.Sequence(lambda n: f"{(n * 7919 + 314159) % 900000 + 100000}")
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(days=3))


class LockCommandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LockCommand

    tenant = factory.SubFactory(TenantFactory)
    lock = factory.SubFactory(LockFactory, tenant=factory.SelfAttribute("..tenant"))
    action = "create"


class LockIssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LockIssue

    tenant = factory.SubFactory(TenantFactory)
    lock = factory.SubFactory(LockFactory, tenant=factory.SelfAttribute("..tenant"))
    kind = "command_timeout"
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)
