"""Confirmed bookings of one property never overlap (DESIGN §3), enforced by PostgreSQL itself: an
exclusion constraint over (property, [check_in, check_out)) for confirmed rows, with btree_gist for the
equality on property. Two stays that meet (check-out 11:00, next check-in 11:00) do not overlap.

SQLite has no exclusion constraints: there the services' lock on the property row is the guard (one
writer at a time anyway). The constraint is kept out of the model state for that reason.
"""

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations
from django.db.models import Func, Q


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


NO_OVERLAP = ExclusionConstraint(
    name="booking_no_overlapping_stays",
    expressions=[
        ("property", RangeOperators.EQUAL),
        (TsTzRange("check_in", "check_out", RangeBoundary()), RangeOperators.OVERLAPS),
    ],
    condition=Q(status="confirmed"),
)


def refuse_existing_overlaps(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    Booking = apps.get_model("portal", "Booking")
    clashes = []
    confirmed = Booking.objects.filter(status="confirmed")
    for booking in confirmed.order_by("property_id", "check_in", "pk"):
        other = confirmed.filter(property_id=booking.property_id, check_in__lt=booking.check_out,
                                 check_out__gt=booking.check_in, pk__gt=booking.pk).first()
        if other is not None:
            clashes.append(f"#{booking.pk} and #{other.pk}")
    if clashes:
        raise RuntimeError(
            "These confirmed bookings overlap (same property): " + ", ".join(clashes[:20])
            + ". Cancel or move one of each pair, then migrate again."
        )


class AddConstraintOnPostgres(migrations.AddConstraint):
    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_constraint(to_state.apps.get_model(app_label, self.model_name), self.constraint)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_constraint(from_state.apps.get_model(app_label, self.model_name), self.constraint)

    def describe(self):
        return "Confirmed bookings of one property never overlap (PostgreSQL only)"


class Migration(migrations.Migration):
    dependencies = [("portal", "0005_properties_feeds_conflicts")]

    operations = [
        BtreeGistExtension(),
        migrations.RunPython(refuse_existing_overlaps, migrations.RunPython.noop),
        AddConstraintOnPostgres(model_name="booking", constraint=NO_OVERLAP),
    ]
