"""API viewsets: thin, tenant-scoped by TenantScopedViewSetMixin, writes through the same services as pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from locks import actions, people
from locks.models import (
    PEOPLE_PURPOSES,
    AccessCode,
    CodeStatus,
    CommandState,
    IssueKind,
    IssueStatus,
    Lock,
    LockCommand,
    LockIssue,
)
from portal import services as booking_services
from portal.api import serializers as s
from portal.api.errors import Conflict
from portal.api.params import query_choice, query_day_bounds, query_id, query_text
from portal.api.routing import TenantScopedViewSetMixin
from portal.api.throttling import pin_reveal_spend
from portal.models import Booking, BookingSource, BookingStatus, Property, Tenant

TENANT_PARAMS = [
    OpenApiParameter(
        "X-Lockstep-Tenant",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Session callers only: the tenant slug (API keys already belong to one tenant).",
    ),
]


@extend_schema_view(list=extend_schema(parameters=TENANT_PARAMS), retrieve=extend_schema(parameters=TENANT_PARAMS))
class PropertyViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Property.objects.select_related("tenant").order_by("name", "id")
    serializer_class = s.PropertySerializer
    property_path = "pk"


@extend_schema_view(list=extend_schema(parameters=TENANT_PARAMS), retrieve=extend_schema(parameters=TENANT_PARAMS))
class LockViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Lock.objects.select_related("provider_account").order_by("property__name", "name", "id")
    serializer_class = s.LockSerializer
    property_path = "property"

    @extend_schema(request=None, responses={202: s.ReconcileRequestedSerializer}, parameters=TENANT_PARAMS)
    @action(detail=True, methods=["post"])
    def reconcile(self, request: Request, pk: str | None = None) -> Response:
        """Check the lock now: a read of its codes is queued on the lock (behind any command in flight);
        the dispatcher reads them and repairs any difference. The same action as the lock page's."""
        lock = self.get_object()
        actions.lock_check_now(lock=lock, now=timezone.now(), actor=self.access.actor)
        return Response({"lock": lock.pk, "reconcile_requested": True}, status=status.HTTP_202_ACCEPTED)


    @extend_schema(
        request=s.PinCheckSerializer, responses={200: s.PinCheckResultSerializer}, parameters=TENANT_PARAMS
    )
    @action(detail=True, methods=["post"], url_path="check-pin")
    def check_pin(self, request: Request, pk: str | None = None) -> Response:
        """Would the lock take this PIN now? Its lengths and constraints, no trivial PINs, not in use.

        For systems that let guests or staff choose a PIN; a 400 lists every reason in ``fields.pin``.
        Staff and admin only: the answer says whether a PIN is in use on the door."""
        from locks.pins import assert_pin_usable, live_pins_on_lock

        lock = self.get_object()
        pin_reveal_spend(self.access)  # "in use on this door?" gives PINs away one guess at a time
        serializer = s.PinCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assert_pin_usable(serializer.validated_data["pin"], lock.requirements or {}, taken=live_pins_on_lock(lock))
        return Response({"lock": lock.pk, "pin_usable": True})


BOOKING_FILTERS = [
    *TENANT_PARAMS,
    OpenApiParameter("status", OpenApiTypes.STR, enum=BookingStatus.values),
    OpenApiParameter("property", OpenApiTypes.INT),
    OpenApiParameter("from", OpenApiTypes.DATE, description="Stays that end on or after this day."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Stays that start before the end of this day."),
    OpenApiParameter("search", OpenApiTypes.STR, description="Guest name, email, phone or external ref."),
]


@extend_schema_view(
    list=extend_schema(parameters=BOOKING_FILTERS),
    retrieve=extend_schema(parameters=TENANT_PARAMS),
)
class BookingViewSet(
    TenantScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Booking.objects.select_related("property").prefetch_related(
        Prefetch("access_codes", queryset=AccessCode.objects.order_by("lock_id", "id"))
    ).order_by("check_in", "id")
    serializer_class = s.BookingSerializer
    property_path = "property"

    def get_object(self) -> Booking:
        if "external_ref" not in self.kwargs:
            return super().get_object()
        # by-ref routes (also reached by OPTIONS, which asks for the object to describe PUT)
        booking = self.get_queryset().filter(source=BookingSource.API, external_ref=self.kwargs["external_ref"]).first()
        if booking is None:
            raise NotFound("No booking has this reference.")
        self.check_object_permissions(self.request, booking)
        return booking

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        if value := query_choice(self.request, "status", BookingStatus.values):
            queryset = queryset.filter(status=value)
        if (property_id := query_id(self.request, "property")) is not None:
            queryset = queryset.filter(property_id=property_id)
        if day := query_day_bounds(self.request, "from"):
            queryset = queryset.filter(check_out__gte=day[0])
        if day := query_day_bounds(self.request, "to"):
            queryset = queryset.filter(check_in__lt=day[1])
        if value := query_text(self.request, "search"):
            queryset = queryset.filter(
                Q(guest_name__icontains=value)
                | Q(guest_email__icontains=value)
                | Q(guest_phone__icontains=value)
                | Q(external_ref__icontains=value)
            )
        return queryset

    def _respond(self, booking: Booking, code: int = status.HTTP_200_OK) -> Response:
        booking = self.get_queryset().get(pk=booking.pk)  # re-read with its codes
        return Response(s.BookingSerializer(booking, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=s.BookingWriteSerializer, responses={201: s.BookingSerializer}, parameters=TENANT_PARAMS)
    def create(self, request: Request) -> Response:
        data = self._validated(s.BookingWriteSerializer, request.data)
        booking = booking_services.booking_create(
            tenant=self.access.tenant, source=BookingSource.API, actor=self.access.actor, **data
        )
        return self._respond(booking, status.HTTP_201_CREATED)

    @extend_schema(request=s.BookingWriteSerializer(partial=True), responses=s.BookingSerializer, parameters=TENANT_PARAMS)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        changes = self._validated(s.BookingWriteSerializer, request.data, instance=booking, partial=True)
        changes.pop("external_ref", None)  # the reference identifies the booking upstream; it does not move
        booking = booking_services.booking_update(booking=booking, actor=self.access.actor, **changes)
        return self._respond(booking)

    @extend_schema(request=None, responses=s.BookingSerializer, parameters=TENANT_PARAMS)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        booking = booking_services.booking_cancel(booking=booking, actor=self.access.actor)
        return self._respond(booking)

    @extend_schema(
        request=s.BookingByRefSerializer,
        responses={200: s.BookingSerializer, 201: s.BookingSerializer},
        parameters=TENANT_PARAMS,
    )
    @action(detail=False, methods=["put"], url_path=r"by-ref/(?P<external_ref>[^/]{1,200})")
    def by_ref(self, request: Request, external_ref: str) -> Response:
        """Create or update the booking with this reference. Safe to repeat: same payload, same booking."""
        data = self._validated(s.BookingByRefSerializer, request.data)
        booking, created = booking_upsert_by_ref(
            tenant=self.access.tenant, external_ref=external_ref, data=data, actor=self.access.actor,
            visible=self.get_queryset(),
        )
        return self._respond(booking, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _validated(self, serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
        serializer = serializer_class(data=data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


def booking_upsert_by_ref(
    *,
    tenant: Tenant,
    external_ref: str,
    data: dict[str, Any],
    actor: User | None,
    visible: QuerySet[Booking],
) -> tuple[Booking, bool]:
    """The API booking with ``external_ref``, created or brought up to date; only real changes are saved,
    so repeating a PUT touches no codes."""
    existing = visible.filter(source=BookingSource.API, external_ref=external_ref).first()
    if existing is None:
        try:
            with transaction.atomic():
                booking = booking_services.booking_create(
                    tenant=tenant, source=BookingSource.API, external_ref=external_ref, actor=actor, **data
                )
            return booking, True
        except (IntegrityError, DjangoValidationError) as exc:
            # A concurrent PUT with the same reference won the race (caught by the unique index or by
            # booking_create's own check): update that one instead.
            if isinstance(exc, DjangoValidationError) and "external_ref" not in getattr(exc, "error_dict", {}):
                raise
            existing = visible.get(source=BookingSource.API, external_ref=external_ref)
    if existing.status == BookingStatus.CANCELLED:
        raise Conflict("This booking was cancelled; send the stay under a new reference.")
    changes = {field: value for field, value in data.items() if getattr(existing, field) != value}
    if changes:
        existing = booking_services.booking_update(booking=existing, actor=actor, **changes)
    return existing, False


CODE_FILTERS = [
    *TENANT_PARAMS,
    OpenApiParameter("status", OpenApiTypes.STR),
    OpenApiParameter("lock", OpenApiTypes.INT),
    OpenApiParameter("booking", OpenApiTypes.INT),
]


def _int_filters(queryset: QuerySet, request: Request, names: tuple[str, ...]) -> QuerySet:
    for name in names:
        if (value := query_id(request, name)) is not None:
            queryset = queryset.filter(**{f"{name}_id": value})
    return queryset


@extend_schema_view(list=extend_schema(parameters=CODE_FILTERS))
class AccessCodeViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = AccessCode.objects.order_by("starts_at", "id")
    serializer_class = s.AccessCodeSerializer
    property_path = "lock__property"

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        if value := query_choice(self.request, "status", CodeStatus.values):
            queryset = queryset.filter(status=value)
        return _int_filters(queryset, self.request, ("lock", "booking"))

    @extend_schema(
        parameters=TENANT_PARAMS,
        responses=s.AccessCodeWithPinSerializer,
        description="Staff and admin callers get the PIN (the reveal is recorded); owners never do.",
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        code = self.get_object()
        if not self.access.can_write or not code.pin:
            return Response(s.AccessCodeSerializer(code).data)
        pin_reveal_spend(self.access)
        return self._with_pin(code, actions.code_reveal_pin(code=code, actor=self.access.actor, now=timezone.now()))

    @extend_schema(request=s.RegenerateSerializer, responses=s.AccessCodeWithPinSerializer, parameters=TENANT_PARAMS)
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str | None = None) -> Response:
        """Give this code a new PIN (generated, or the `pin` you send); the new PIN is in the response.
        A PIN that breaks the lock's rules or is in use on it is a 400 listing every reason in fields.pin."""
        code = self.get_object()
        pin_reveal_spend(self.access)  # the answer carries the new PIN
        serializer = s.RegenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code = actions.code_regenerate_pin(
            code=code, actor=self.access.actor, now=timezone.now(), pin=serializer.validated_data.get("pin")
        )
        return self._with_pin(code, code.pin)

    @extend_schema(request=s.PeopleCodeWriteSerializer, responses={201: s.AccessCodeWithPinSerializer(many=True)},
                   parameters=TENANT_PARAMS)
    def create(self, request: Request) -> Response:
        """A code for a person who is not a guest (cleaner, maintenance, owner, staff) on one lock or on every
        lock of a property; the codes made, with their PIN, are in the response."""
        serializer = s.PeopleCodeWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        properties = self.access.properties()
        lock = prop = None
        if "lock" in data:
            lock = Lock.objects.filter(tenant=self.access.tenant, property__in=properties, pk=data["lock"]).first()
            if lock is None:
                raise NotFound("No such lock.")
        else:
            prop = properties.filter(pk=data["property"]).first()
            if prop is None:
                raise NotFound("No such property.")
        pin_reveal_spend(self.access)  # the answer carries the PIN
        codes = people.people_code_create(
            purpose=data["purpose"], holder_name=data["holder_name"], lock=lock, property=prop,
            pin=data.get("pin") or None, starts_at=data.get("starts_at"), ends_at=data.get("ends_at"),
            actor=self.access.actor, now=timezone.now(),
        )
        response = Response([s.AccessCodeWithPinSerializer(code, context={"revealed_pin": code.pin}).data
                             for code in codes], status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)
        return response

    def _person_code(self) -> AccessCode:
        code = self.get_object()
        if code.booking_id is not None or code.purpose not in PEOPLE_PURPOSES:
            raise Conflict("A guest's code follows its booking; change the booking instead.")
        return code

    @extend_schema(request=s.PeopleCodeUpdateSerializer, responses=s.AccessCodeSerializer, parameters=TENANT_PARAMS)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change a person's code (and the codes sharing its PIN on other doors): holder name, window
        (both null: ongoing), PIN. The locks follow through their queues."""
        code = self._person_code()
        serializer = s.PeopleCodeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        people.people_code_update(
            code=code, holder_name=data.get("holder_name", code.holder_name or code.name),
            starts_at=data.get("starts_at", code.starts_at),
            ends_at=data.get("ends_at", code.ends_at),
            pin=data.get("pin") or None, actor=self.access.actor, now=timezone.now(),
        )
        return Response(s.AccessCodeSerializer(self.get_queryset().get(pk=code.pk)).data)

    @extend_schema(request=None, responses=s.AccessCodeSerializer, parameters=TENANT_PARAMS)
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Take a person's code off its lock: it goes to `removing` and the lock's queue deletes it."""
        code = self._person_code()
        people.people_code_remove(code=code, actor=self.access.actor, now=timezone.now())
        return Response(s.AccessCodeSerializer(self.get_queryset().get(pk=code.pk)).data)

    def _with_pin(self, code: AccessCode, pin: str) -> Response:
        response = Response(s.AccessCodeWithPinSerializer(code, context={"revealed_pin": pin}).data)
        add_never_cache_headers(response)  # no shared or browser cache keeps a PIN
        return response


@extend_schema_view(
    list=extend_schema(
        parameters=[*TENANT_PARAMS, OpenApiParameter("lock", OpenApiTypes.INT), OpenApiParameter("state", OpenApiTypes.STR)]
    ),
    retrieve=extend_schema(parameters=TENANT_PARAMS),
)
class LockCommandViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = LockCommand.objects.order_by("-id")
    serializer_class = s.LockCommandSerializer
    property_path = "lock__property"

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        if value := query_choice(self.request, "state", CommandState.values):
            queryset = queryset.filter(state=value)
        return _int_filters(queryset, self.request, ("lock", "access_code"))


@extend_schema_view(
    list=extend_schema(
        parameters=[
            *TENANT_PARAMS,
            OpenApiParameter("status", OpenApiTypes.STR, enum=IssueStatus.values),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=IssueKind.values),
            OpenApiParameter("lock", OpenApiTypes.INT),
        ]
    ),
    retrieve=extend_schema(parameters=TENANT_PARAMS),
)
class LockIssueViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = LockIssue.objects.order_by("-last_seen_at", "-id")
    serializer_class = s.LockIssueSerializer
    property_path = "lock__property"

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        for name, choices in (("status", IssueStatus.values), ("kind", IssueKind.values)):
            if value := query_choice(self.request, name, choices):
                queryset = queryset.filter(**{name: value})
        return _int_filters(queryset, self.request, ("lock",))
