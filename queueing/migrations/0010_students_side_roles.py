"""Managers name and revoke the room's displays, and read check-ins, in admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = [f"{verb}_display" for verb in ("add", "change", "delete", "view")] + [
    "view_checkin",
    "view_studentnotice",
]


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    config = apps.get_app_config("queueing")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group, _ = Group.objects.get_or_create(name="Manager")
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="queueing", codename__in=GRANTS)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Manager").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="queueing", codename__in=GRANTS)
        )


class Migration(migrations.Migration):
    dependencies = [("queueing", "0009_students_side")]

    operations = [migrations.RunPython(grant, revoke)]
