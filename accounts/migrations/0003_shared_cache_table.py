"""The table of the shared cache without Redis (settings.CACHES["default"]): login rate
limits and used two-factor codes, seen the same by every worker. Made here so that every
`migrate` (make run, the compose migrate service, tests) leaves it in place; it is made
whether or not this deployment uses Redis now, so unsetting REDIS_URL later needs no step.
"""

from django.core.management import call_command
from django.db import migrations

TABLE = "resq_cache"


def create(apps, schema_editor):
    call_command("createcachetable", TABLE, database=schema_editor.connection.alias, verbosity=0)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_managers_unlock_logins")]

    operations = [migrations.RunPython(create, drop)]
