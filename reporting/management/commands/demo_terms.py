"""The academic calendar for the demo: the terms that the demo history falls in, so the
dashboard's term views and "same week last term" comparisons have something to show."""

from datetime import date

from django.core.management.base import BaseCommand
from django.db import transaction

from reporting.models import Term, TermBreak

# (name, first teaching day, last day, [(break name, first day, last day)])
DEMO_TERMS = [
    (
        "Semester 2 2025",
        date(2025, 7, 28),
        date(2025, 10, 31),
        [("Study break", date(2025, 9, 29), date(2025, 10, 3))],
    ),
    (
        "Semester 1 2026",
        date(2026, 2, 23),
        date(2026, 5, 29),
        [("Non-teaching week", date(2026, 4, 6), date(2026, 4, 10))],
    ),
    (
        "Semester 2 2026",
        date(2026, 7, 27),
        date(2026, 10, 30),
        [("Study break", date(2026, 9, 28), date(2026, 10, 2))],
    ),
]


class Command(BaseCommand):
    help = "Create the demo's terms and study breaks (skips any that exist by name)."

    def handle(self, *args, **options) -> None:
        made = 0
        with transaction.atomic():
            for name, first_day, last_day, breaks in DEMO_TERMS:
                term, created = Term.objects.get_or_create(
                    name=name, defaults={"first_day": first_day, "last_day": last_day}
                )
                if created:
                    made += 1
                    for break_name, start, end in breaks:
                        TermBreak.objects.create(
                            term=term, name=break_name, first_day=start, last_day=end
                        )
        self.stdout.write(f"Terms: {made} created, {len(DEMO_TERMS) - made} already there.")
