from datetime import timedelta

import factory
from django.utils import timezone

from queueing.models import Board, CheckIn, EnquiryType, StaffingChange, Team, Visit, VisitEvent


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")
    available_staff = 2


class EnquiryTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnquiryType
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Enquiry {n}")


class VisitFactory(factory.django.DjangoModelFactory):
    """A waiting visit in the seeded STUDYSmarter team, unless told otherwise."""

    class Meta:
        model = Visit

    student_name = factory.Faker("name")
    student_number = factory.Sequence(lambda n: f"{21000000 + n:08d}")
    unit_code = "CITS3200"
    team = factory.LazyFunction(lambda: Team.objects.get(slug="studysmarter"))
    enquiry_type = factory.LazyFunction(lambda: EnquiryType.objects.get(name="Essay"))
    arrived_at = factory.LazyFunction(timezone.now)


def finished_visit(arrived_at, *, waited: int, minutes: int, **fields) -> Visit:
    """A visit seen and finished: its session started `waited` minutes after it arrived
    and lasted `minutes`."""
    started = arrived_at + timedelta(minutes=waited)
    return VisitFactory(
        arrived_at=arrived_at,
        started_at=started,
        ended_at=started + timedelta(minutes=minutes),
        status=Visit.Status.FINISHED,
        outcome=Visit.Outcome.FINISHED,
        **fields,
    )


def db_state() -> dict:
    """Everything a desk action could change: equal before and after means nothing was
    written."""
    return {
        "visits": list(Visit.objects.order_by("pk").values()),
        "events": VisitEvent.objects.count(),
        "staffing_changes": StaffingChange.objects.count(),
        "staffing": list(Team.objects.order_by("pk").values_list("pk", "available_staff")),
        "board": Board.current_version(),
        "checkins": list(CheckIn.objects.order_by("pk").values_list("pk", "status")),
    }
