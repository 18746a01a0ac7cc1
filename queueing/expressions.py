"""Small portable SQL expressions over a visit's times, on PostgreSQL and SQLite.

The visit keeps four of them as stored generated columns (see `Visit`), computed by the
database when a row is written: the reports then group by plain columns instead of
converting every visit's times to local time on every read.

The local ones read the service's time zone (`settings.TIME_ZONE`) when they are
compiled, so a generated column holds the zone the database was migrated with;
`queueing.checks` says so if the setting later differs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import NotSupportedError
from django.db.models import DateField, Func, IntegerField
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate
from django.utils import timezone


class SecondsBetween(Func):
    """Whole seconds from one datetime expression to another (null if either is).

    Django cannot extract a number from a duration on SQLite, and an interval cannot be
    cast to a number on PostgreSQL, so each backend gets its own small expression.
    """

    arity = 2
    output_field = IntegerField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        raise NotSupportedError("SecondsBetween supports PostgreSQL and SQLite only.")

    def _parts(self, compiler: Any, connection: Any) -> tuple[str, str, list]:
        start, end = self.get_source_expressions()
        start_sql, start_params = compiler.compile(start)
        end_sql, end_params = compiler.compile(end)
        return start_sql, end_sql, [*end_params, *start_params]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        start_sql, end_sql, params = self._parts(compiler, connection)
        # date_part is double precision; EXTRACT would be numeric, slower to compute.
        return (
            f"CAST(FLOOR(DATE_PART('epoch', {end_sql} - {start_sql}) + 0.5) AS integer)",
            params,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        start_sql, end_sql, params = self._parts(compiler, connection)
        # julianday() is a float of days; rounding to the second absorbs its error.
        return (
            f"CAST(ROUND((julianday({end_sql}) - julianday({start_sql})) * 86400) AS integer)",
            params,
        )


class LocalDay(Func):
    """The date of a datetime in the service's time zone."""

    arity = 1
    output_field = DateField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        (field,) = self.get_source_expressions()
        day = TruncDate(field, tzinfo=timezone.get_default_timezone())
        return compiler.compile(day.resolve_expression(compiler.query))


class HourOfWeek(Func):
    """The local hour of the week of a datetime: 0 is Monday 00:00-01:00, 167 Sunday
    23:00-24:00, in the service's time zone. One integer rather than a weekday and an
    hour, so the peak-hours grid groups by one key."""

    arity = 1
    output_field = IntegerField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        (field,) = self.get_source_expressions()
        zone = timezone.get_default_timezone()
        cell = (ExtractIsoWeekDay(field, tzinfo=zone) - 1) * 24 + ExtractHour(field, tzinfo=zone)
        return compiler.compile(cell.resolve_expression(compiler.query))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        (field,) = self.get_source_expressions()
        sql, params = compiler.compile(field)
        # Hours since 1970-01-01 00:00 local, a Thursday: 72 hours after a Monday.
        return (
            f"MOD(CAST(FLOOR(DATE_PART('epoch', {sql} AT TIME ZONE %s) / 3600) AS integer)"
            " + 72, 168)",
            [*params, settings.TIME_ZONE],
        )
