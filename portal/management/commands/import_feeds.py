"""Import every booking feed now (the scheduled task does the same every 15 minutes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from portal.feeds import feed_import, feeds_to_import


class Command(BaseCommand):
    help = "Fetch and import every iCal booking feed (of properties that are not archived)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--property", type=int, help="Only this property id's feeds.")

    def handle(self, *args: Any, **options: Any) -> None:
        feeds = feeds_to_import()
        if options["property"]:
            feeds = feeds.filter(property_id=options["property"])
        for feed in feeds:
            result = feed_import(feed=feed, now=timezone.now())
            name = f"{feed.property.name} ({feed.label})"
            if result.error:
                self.stderr.write(f"{name}: {result.error}")
                continue
            self.stdout.write(
                f"{name}: {len(result.created)} new, {len(result.moved)} moved, "
                f"{len(result.cancelled)} cancelled, {result.unchanged} unchanged, "
                f"{len(result.conflicts)} in conflict"
                + (f", rejected: {'; '.join(result.rejected)}" if result.rejected else "")
            )
