"""Exporting visits with names and student numbers is its own permission; the
Coordinator role holds it. It guards the Export Data page and the visit export in admin
alike: a manager corrects records without it, and exports only if also given it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    config = apps.get_app_config("queueing")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group, _ = Group.objects.get_or_create(name="Coordinator")
    group.permissions.add(
        Permission.objects.get(content_type__app_label="queueing", codename="export_visits")
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="queueing", codename="export_visits").delete()


class Migration(migrations.Migration):
    dependencies = [("queueing", "0003_report_indexes")]

    operations = [
        migrations.AlterModelOptions(
            name="visit",
            options={
                "ordering": ["arrived_at", "pk"],
                "permissions": [
                    ("use_desk", "Can run the desk (live queue)"),
                    ("export_visits", "Can export visits with student details (CSV)"),
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
