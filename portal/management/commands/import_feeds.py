"""Import every property's iCal feed now (the scheduled task does the same every 15 minutes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from portal.feeds import feed_import
from portal.models import Property


class Command(BaseCommand):
    help = "Fetch and import the iCal booking feed of every property that has one."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--property", type=int, help="Only this property id.")

    def handle(self, *args: Any, **options: Any) -> None:
        properties = Property.objects.exclude(ical_url="").order_by("pk")
        if options["property"]:
            properties = properties.filter(pk=options["property"])
        for prop in properties:
            result = feed_import(prop=prop, now=timezone.now())
            if result.error:
                self.stderr.write(f"{prop.name}: {result.error}")
                continue
            self.stdout.write(
                f"{prop.name}: {len(result.created)} new, {len(result.moved)} moved, "
                f"{len(result.cancelled)} cancelled, {result.unchanged} unchanged"
                + (f", rejected: {'; '.join(result.rejected)}" if result.rejected else "")
            )
