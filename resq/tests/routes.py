"""Every URL pattern the project serves, and a URL that reaches each one.

The permissions matrix, the login walk and the fuzz test read the URLconf through this
module, so a pattern added tomorrow is walked by all three without anyone listing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import give_authenticator_app
from queueing.models import CheckIn, Display, EnquiryType, StaffingChange, Team, Visit
from queueing.tests.factories import VisitFactory
from reporting.models import DailyReport, Term

ROUTE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()\\]|\\.)*\)")
ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


@dataclass(frozen=True)
class Route:
    route: str
    name: str | None

    @property
    def label(self) -> str:
        return self.name or self.route

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")


def _join(first: str, second: str) -> str:
    # As Django joins them for ResolverMatch.route: no "^" at the start of the second.
    return first + second.removeprefix("^") if first else second


def every_route(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Each URL pattern with its full route and its namespaced name."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from every_route(entry.url_patterns, _join(prefix, str(entry.pattern)), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            yield Route(_join(prefix, str(entry.pattern)), name)
        else:
            raise AssertionError(f"Unknown URLconf entry {entry!r}: teach the walk about it.")


class Samples:
    """Real rows for every URL parameter, so each view gets as far as it can."""

    def __init__(self) -> None:
        self.visit = VisitFactory(ticket="S-001", student_key="k" * 43)
        self.user = UserFactory(username="someone")
        self.display = Display.objects.create(name="Entrance TV")
        self.checkin = CheckIn.objects.create(
            display=self.display,
            student_name="Ada Lovelace",
            student_number="21234567",
            enquiry_type=EnquiryType.objects.get(name="Essay"),
        )
        self.objects = {
            "accounts.user": self.user,
            "auth.group": Group.objects.get(name="Student leader"),
            "queueing.visit": self.visit,
            "queueing.team": Team.objects.get(slug="studysmarter"),
            "queueing.enquirytype": EnquiryType.objects.get(name="Essay"),
            "queueing.display": self.display,
            "queueing.checkin": self.checkin,
            "queueing.staffingchange": StaffingChange.objects.create(
                team=self.visit.team, available=1, delta=1
            ),
            "reporting.term": Term.objects.create(
                name="Semester 2 2026",
                first_day=timezone.localdate().replace(month=7, day=20),
                last_day=timezone.localdate().replace(month=11, day=20),
            ),
            "reporting.dailyreport": DailyReport.objects.create(
                day=timezone.localdate(), claimed_at=timezone.now()
            ),
        }
        access = {
            "user_agent": "test",
            "ip_address": "127.0.0.1",
            "username": "someone",
            "http_accept": "*/*",
            "path_info": "/accounts/login/",
        }
        give_authenticator_app(self.user)
        self.objects |= {
            "account.emailaddress": EmailAddress.objects.create(
                user=self.user, email="someone@example.edu"
            ),
            "mfa.authenticator": Authenticator.objects.get(user=self.user),
            "axes.accessattempt": AccessAttempt.objects.create(
                **access, get_data="", post_data="", failures_since_start=1
            ),
            "axes.accesslog": AccessLog.objects.create(**access),
            "axes.accessfailurelog": AccessFailureLog.objects.create(**access),
            "usersessions.usersession": UserSession.objects.create(
                user=self.user, ip="127.0.0.1", session_key="s" * 32, user_agent="test"
            ),
        }
        self.objects["admin.logentry"] = LogEntry.objects.create(
            user=self.user,
            content_type=ContentType.objects.get_for_model(Visit),
            object_id=str(self.visit.pk),
            object_repr=str(self.visit),
            action_flag=CHANGE,
            change_message="[]",
        )
        #: Values by (route label, parameter), then by parameter.
        self.by_route = {
            ("queueing:staffing", "slug"): "studysmarter",
            ("reporting:chart_csv", "name"): "popular-units",
            ("admin:view_on_site", "content_type_id"): str(
                ContentType.objects.get_for_model(Visit).pk
            ),
            ("admin:view_on_site", "object_id"): str(self.visit.pk),
            ("admin:auth_user_password_change", "id"): str(self.user.pk),
            ("queueing:accept_checkin", "pk"): str(self.checkin.pk),
            ("queueing:dismiss_checkin", "pk"): str(self.checkin.pk),
            ("students:display", "token"): self.display.token,
            ("students:display_poll", "token"): self.display.token,
            ("students:poster", "token"): self.display.token,
            ("students:checkin", "token"): self.display.checkin_token,
            ("students:place", "key"): self.visit.student_key,
            ("students:place_poll", "key"): self.visit.student_key,
            ("students:leave", "key"): self.visit.student_key,
        }
        self.by_name = {
            "pk": str(self.visit.pk),
            "app_label": "queueing",
            "url": "no-such-page/",
            # A password reset link whose key is wrong: the page that says so.
            "uidb36": "1",
            "key": "not-a-real-key",
        }
        self.queries = {"reporting:export_csv": "?period=last-week"}

    def value(self, route: Route, name: str) -> str:
        if (route.label, name) in self.by_route:
            return self.by_route[route.label, name]
        model = ADMIN_MODEL_ROUTE.match(route.route)
        if name == "object_id" and model:
            key = f"{model['app']}.{model['model']}"
            assert key in self.objects, f"{route.label}: no sample {key}; add one to Samples."
            return str(self.objects[key].pk)
        assert name in self.by_name, (
            f"{route.label}: no sample value for <{name}>; add one to Samples."
        )
        return self.by_name[name]

    def url_for(self, route: Route) -> str:
        """A URL that reaches this pattern, not a neighbour or a 404; fails by the
        pattern's name when it cannot build one."""
        path = REGEX_GROUP.sub(lambda m: self.value(route, m["name"]), route.route)
        path = ROUTE_PARAM.sub(lambda m: self.value(route, m["name"]), path)
        url = "/" + path.replace("^", "").replace("$", "")
        assert resolve(url).route == route.route, (
            f"{route.label}: the sample URL {url} reaches {resolve(url).route!r} instead."
        )
        return url + self.queries.get(route.label, "")


@pytest.fixture
def samples(db) -> Samples:
    return Samples()
