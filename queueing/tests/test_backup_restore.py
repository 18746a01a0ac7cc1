"""Backups restore every row of every table, and old backups are pruned by the rule.

The backup tests run the real scripts (`deploy/backup/backup.sh`, `restore.sh`) against
PostgreSQL, on databases of their own whose names contain "resq_backup_test": one is
migrated and filled once (every table gets rows: visits in every state, their events,
staffing changes, terms, users, groups, permissions, sessions, the admin log), and each
test works on a copy of it. A table is compared by its row count and an md5 of all its
rows as text, so a single changed value anywhere shows; sequences, constraints and
indexes are compared too. The retention tests need no database.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from django.db import connection, models
from psycopg import sql

from deploy.backup import retention

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup" / "backup.sh"
RESTORE = ROOT / "deploy" / "backup" / "restore.sh"
RETENTION = ROOT / "deploy" / "backup" / "retention.py"
SCRIPT_SECONDS = 120

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="Backups are pg_dump and pg_restore: they need PostgreSQL.",
)


# --- databases of our own ------------------------------------------------------------


def server_params() -> dict[str, str | int]:
    """How to reach the PostgreSQL server the test run uses (not its test database)."""
    settings = connection.settings_dict
    params = {
        "host": settings["HOST"] or "localhost",
        "port": int(settings["PORT"] or 5432),
        "user": settings["USER"],
        "password": settings["PASSWORD"],
    }
    return {key: value for key, value in params.items() if value}


def database_url(name: str) -> str:
    params = server_params()
    auth = params.get("user", "")
    if "password" in params:
        auth += f":{params['password']}"
    return f"postgres://{auth}{'@' if auth else ''}{params['host']}:{params['port']}/{name}"


def admin(*statements: sql.Composable) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **server_params()) as conn:
        for statement in statements:
            conn.execute(statement)


def drop(name: str) -> sql.Composable:
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


def create(name: str, *, template: str | None = None) -> sql.Composable:
    if template is None:
        return sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    return sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )


def run(
    *command: str | Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(  # noqa: S603 (the project's own scripts)
        [str(part) for part in command],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
        check=False,
    )
    print(result.stdout + result.stderr)
    if check and result.returncode != 0:
        pytest.fail(f"{command[0]} exited with {result.returncode}", pytrace=False)
    return result


def django_env(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "resq.settings"}


@pytest.fixture(scope="module")
def filled_template() -> Iterator[str]:
    """A migrated database with rows in every table, to copy from."""
    name = f"resq_backup_test_{os.getpid()}_template"
    url = database_url(name)
    admin(drop(name), create(name))
    try:
        run(sys.executable, "manage.py", "migrate", "--noinput", "-v0", env=django_env(url))
        code = (
            "import django; django.setup(); "
            "from queueing.tests.test_backup_restore import fill_every_table; fill_every_table()"
        )
        run(sys.executable, "-c", code, env=django_env(url))
        yield name
    finally:
        admin(drop(name))


@pytest.fixture
def filled_db(filled_template: str) -> Iterator[str]:
    """A fresh copy of the filled database; its URL."""
    name = f"resq_backup_test_{os.getpid()}"
    admin(drop(name), create(name, template=filled_template))
    try:
        yield database_url(name)
    finally:
        admin(drop(name))


def fill_every_table() -> None:
    """Rows in every table, made the way the service makes them. Run in a process of its
    own, with DATABASE_URL pointing at the database to fill."""
    from django.apps import apps
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone as django_timezone

    from accounts.models import User
    from queueing.models import EnquiryType, Team, Visit
    from reporting.models import DailyReport, Term, TermBreak

    leader = User.objects.create_user("leader", password="s3cret-Leader", first_name="Zoë")
    leader.groups.add(Group.objects.get(name="Student leader"))
    manager = User.objects.create_user("manager", first_name="Max", is_staff=True)
    manager.groups.add(Group.objects.get(name="Manager"))
    manager.user_permissions.add(Permission.objects.get(codename="export_visits"))

    studysmarter = Team.objects.get(slug="studysmarter")
    librarian = Team.objects.get(slug="librarian")
    studysmarter.change_staffing(+3, by=leader)
    librarian.change_staffing(+2, by=leader)
    librarian.change_staffing(-1, by=manager)
    essay = EnquiryType.objects.get(name="Essay")
    referencing = EnquiryType.objects.get(name="Referencing")

    numbers = iter(range(21000001, 21000100))

    def add(name: str, team: Team = studysmarter, unit: str = "CITS3200") -> Visit:
        return Visit.add(
            by=leader,
            student_name=name,
            student_number=f"{next(numbers):08d}",
            unit_code=unit,
            team=team,
            enquiry_type=essay,
        )

    # Out of time: still waiting when the queue closed.
    add("Late Lou")
    add("Later Lin", librarian)
    Visit.close_queue(by=manager)

    add("Zoë O'Brien")  # waiting
    add("李雷", librarian, unit="")  # waiting, no unit code
    add('Ana "Quoted" | Piped\\Slash').start_session(by=leader)  # in session
    finished = add("Fin Ish")
    finished.start_session(by=leader)
    finished.finish(by=leader)
    add("No Show").remove(by=leader, outcome=Visit.Outcome.NO_SHOW)
    add("Gone Early").remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    undone = add("Back Again")
    undone.start_session(by=leader)
    undone.undo_start(by=leader)
    moved = add("Mo Ved")
    moved.correct(by=manager, student_name="Mo Ved-Smith", team=librarian)
    typo = add("Ty Po")
    typo.correct(by=manager, enquiry_type=referencing, unit_code="LAWS1111")
    restored = add("Re Stored")
    restored.remove(by=leader, outcome=Visit.Outcome.CANCELLED)
    restored.undo_end(by=leader)

    term = Term.objects.create(
        name="Semester 2 2026", first_day=date(2026, 7, 27), last_day=date(2026, 11, 20)
    )
    TermBreak.objects.create(term=term, first_day=date(2026, 9, 28), last_day=date(2026, 10, 2))
    DailyReport.claim(date(2026, 11, 27), now=django_timezone.now())

    session = SessionStore()
    session["resq-backup-test"] = "a session survives a restore"
    session.create()
    LogEntry.objects.create(
        user=manager,
        content_type=ContentType.objects.get_for_model(Team),
        object_id=str(librarian.pk),
        object_repr=str(librarian),
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Available label"]}}]',
    )

    # The shared cache's table: rate limits and used two-factor codes live there.
    from django.core.cache import caches

    caches["default"].set("backup-test", "a counter", timeout=3600)

    # The apps ResQ builds on (sign-in, throttling, two-factor, …) keep tables too: one
    # plausible row in each still empty, so that whatever is added later goes through
    # the backup with data as well.
    for model in apps.get_models():
        meta = model._meta
        if not (meta.auto_created or meta.proxy or not meta.managed) and not model.objects.exists():
            plausible_row(model)


def plausible_row(model: type[models.Model]) -> models.Model:
    """A row of `model` with a plain value in every field that needs one."""
    from django.utils import timezone as django_timezone

    now = django_timezone.now()
    values: dict[str, object] = {}
    for field in model._meta.concrete_fields:
        if isinstance(field, models.AutoField) or field.null or field.has_default():
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if field.is_relation:
            related = field.related_model
            values[field.name] = related.objects.first() or plausible_row(related)
        elif field.choices:
            values[field.name] = field.choices[0][0]
        else:
            values[field.name] = plain_value(field, now)
    return model.objects.create(**values)


def plain_value(field: models.Field, now: datetime) -> object:
    kind = field.get_internal_type()
    if kind == "EmailField":
        return "someone@example.edu"
    if kind == "GenericIPAddressField":
        return "192.0.2.1"
    if kind in ("CharField", "SlugField", "TextField", "URLField"):
        return "backup-test"[: field.max_length or None]
    if kind == "BooleanField":
        return True
    if kind.endswith("IntegerField") or kind in ("DecimalField", "FloatField"):
        return 1
    if kind == "DateTimeField":
        return now
    if kind == "DateField":
        return now.date()
    if kind == "JSONField":
        return {"made by": "the backup test"}
    if kind == "UUIDField":
        return uuid.uuid4()
    raise NotImplementedError(f"no plain value for {field!r} ({kind}): add one here")


def snapshot(url: str) -> dict:
    """Every table's row count and rows' checksum; sequences, constraints, indexes."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        rows = {}
        for (table,) in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                "FROM {} AS t"
            ).format(sql.Identifier(table))
            rows[table] = conn.execute(query).fetchone()
        sequences = conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' "
            "ORDER BY sequencename"
        ).fetchall()
        # By name and kind: PostgreSQL prints a restored CHECK's expression with its
        # casts arranged differently (the same condition); see assert_states_checked.
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, contype "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
        # Likewise by name, table, columns and kind: a partial index's condition is
        # printed differently once restored.
        # printed differently once restored, and column numbers change where a column
        # was dropped.
        indexes = conn.execute(
            """
            SELECT c.relname, t.relname, i.indisunique, i.indpred IS NOT NULL,
                (SELECT string_agg(a.attname, ',' ORDER BY k.n)
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relnamespace = 'public'::regnamespace ORDER BY 1
            """
        ).fetchall()
    return {"rows": rows, "sequences": sequences, "constraints": constraints, "indexes": indexes}


def assert_states_checked(url: str) -> None:
    """The restored database still refuses a half-written visit."""
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE queueing_visit SET started_at = NULL WHERE status = 'in_session'")


def table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]


def back_up(url: str, backups: Path) -> Path:
    backups.mkdir(exist_ok=True)
    result = run(BACKUP, env={"DATABASE_URL": url, "BACKUP_DIR": str(backups)})
    dumps = sorted(backups.glob("resq-*.dump"))
    assert len(dumps) == 1, result.stdout
    assert f"wrote {dumps[0].name}" in result.stdout
    return dumps[0]


def recreate_empty(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin(drop(name), create(name))


# --- backup and restore --------------------------------------------------------------


@postgresql_only
def test_it_restores_every_row_of_every_table_after_the_database_is_lost(filled_db, tmp_path):
    before = snapshot(filled_db)
    empty = [table for table, (count, _) in before["rows"].items() if count == 0]
    assert not empty, f"fill_every_table() left these tables empty: {empty}"
    assert ("queueing_visit", "visit_state_consistent", "c") in before["constraints"]

    dump = back_up(filled_db, tmp_path / "backups")
    # Student data: readable by the backup's owner only.
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert not list((tmp_path / "backups").glob(".*"))  # no temporary file left

    recreate_empty(filled_db)  # the database is gone; an empty one stands in its place
    result = run(RESTORE, dump, env={"DATABASE_URL": filled_db})

    assert snapshot(filled_db) == before
    assert "holds 12 visits" in result.stdout
    assert_states_checked(filled_db)
    # Django sees the schema it expects: no migration is missing or unapplied.
    run(sys.executable, "manage.py", "migrate", "--check", env=django_env(filled_db))


@postgresql_only
def test_it_refuses_to_restore_over_data_unless_forced(filled_db, tmp_path):
    original = snapshot(filled_db)
    dump = back_up(filled_db, tmp_path / "backups")
    with psycopg.connect(filled_db) as conn:
        conn.execute("DELETE FROM queueing_visitevent WHERE action = 'added'")
        conn.execute("UPDATE queueing_team SET available_staff = 0")
    damaged = snapshot(filled_db)

    refused = run(RESTORE, dump, env={"DATABASE_URL": filled_db}, check=False)

    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert snapshot(filled_db) == damaged

    run(RESTORE, "--force", dump, env={"DATABASE_URL": filled_db})

    assert snapshot(filled_db) == original


@postgresql_only
def test_it_restores_nothing_from_a_damaged_backup(filled_db, tmp_path):
    dump = back_up(filled_db, tmp_path / "backups")
    # Cut short, as by a full disk: the table of contents is intact, the data is not.
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    recreate_empty(filled_db)

    result = run(RESTORE, damaged, env={"DATABASE_URL": filled_db}, check=False)

    assert result.returncode != 0
    assert table_count(filled_db) == 0  # one transaction: all or nothing


@postgresql_only
def test_it_leaves_no_backup_file_when_the_dump_fails(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "resq-20261101T013000+0800.dump").write_bytes(b"an older backup")

    result = run(
        BACKUP,
        env={"DATABASE_URL": database_url("resq_backup_test_missing"), "BACKUP_DIR": str(backups)},
        check=False,
    )

    assert result.returncode != 0
    assert "FAILED" in result.stderr
    # Nothing new, nothing half-written, and nothing pruned after a failed backup.
    assert [path.name for path in backups.iterdir()] == ["resq-20261101T013000+0800.dump"]


# --- retention -----------------------------------------------------------------------

PERTH = timezone(timedelta(hours=8))


def backup_name(when: datetime) -> str:
    return f"resq-{when:%Y%m%dT%H%M%S%z}.dump"


def nightly(last: date, days: int, *, at: tuple[int, int] = (1, 30)) -> list[str]:
    """The names of a nightly backup on each of `days` days up to `last`."""
    return [
        backup_name(datetime(d.year, d.month, d.day, *at, tzinfo=PERTH))
        for d in (last - timedelta(days=n) for n in range(days))
    ]


def test_it_keeps_fourteen_daily_and_eight_weekly_backups(tmp_path):
    last = date(2026, 11, 29)  # a Sunday
    names = nightly(last, 120)
    extra_today = backup_name(datetime(2026, 11, 29, 14, 0, tzinfo=PERTH))
    others = ["notes.txt", "resq-before-upgrade.dump", ".resq-x.dump.a1b2c3.partial"]
    for name in [*names, extra_today, *others]:
        (tmp_path / name).write_bytes(b"")

    deleted = retention.prune(tmp_path)

    dailies = {backup_name(datetime(2026, 11, d, 1, 30, tzinfo=PERTH)) for d in range(16, 29)}
    sundays = [date(2026, 11, 22) - timedelta(weeks=n) for n in range(7)]
    weeklies = {backup_name(datetime(d.year, d.month, d.day, 1, 30, tzinfo=PERTH)) for d in sundays}
    # Today's newest stands for today and for this week; the night's earlier one goes.
    expected = {extra_today} | dailies | weeklies
    assert len(dailies) == 13 and len(expected) == 14 + 6
    assert {p.name for p in tmp_path.iterdir()} == expected | set(others)
    assert len(deleted) == 120 + 1 - len(expected)


def test_it_counts_backups_not_calendar_days_when_backups_stopped(tmp_path):
    # Nightly backups ran until 30 September, then nothing for two months.
    names = nightly(date(2026, 9, 30), 90)
    for name in names:
        (tmp_path / name).write_bytes(b"")

    retention.prune(tmp_path)

    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept[-14:] == sorted(nightly(date(2026, 9, 30), 14))
    # Eight weeks: the newest of three of them (27 and 20 September, and the 30th) are
    # among the dailies already.
    assert len(kept) == 14 + 5


def test_it_orders_backups_by_time_across_utc_offsets():
    # 23:30 at +0000 is later than 07:00 the next day at +0800 (23:00 UTC).
    earlier = "resq-20261102T070000+0800.dump"
    later = "resq-20261101T233000+0000.dump"

    assert retention.backups_to_keep([earlier, later], daily=1, weekly=0) == {later}


def test_it_deletes_nothing_on_a_dry_run_and_says_what_it_would(tmp_path):
    for name in nightly(date(2026, 11, 29), 30):
        (tmp_path / name).write_bytes(b"")

    result = subprocess.run(  # noqa: S603 (the project's own script)
        [sys.executable, RETENTION, "--dry-run", tmp_path],
        capture_output=True,
        text=True,
        check=True,
        timeout=SCRIPT_SECONDS,
    )

    assert len(list(tmp_path.iterdir())) == 30
    # Thirty nights span five ISO weeks: three Sundays are older than the dailies.
    assert result.stdout.count("would delete") == 30 - (14 + 3)
    assert "17 backups kept" in result.stdout


def test_it_ignores_files_it_did_not_name():
    assert retention.backup_time("resq-20261301T013000+0800.dump") is None  # month 13
    assert retention.backup_time("resq-20261101T013000.dump") is None  # no offset
    assert retention.backup_time("resq-20261101T013000+0800.dump.partial") is None
    assert retention.backup_time("resq-20261101T013000+0800.dump") == datetime(
        2026, 11, 1, 1, 30, tzinfo=PERTH
    )
