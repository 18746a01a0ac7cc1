"""Coordinators and managers read the reports (Data Analytics); managers keep the
academic calendar."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Coordinator": ["view_reports", "view_term"],
    "Manager": ["view_reports", "add_term", "change_term", "delete_term", "view_term",
                "add_termbreak", "change_termbreak", "delete_termbreak", "view_termbreak"],
}


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    config = apps.get_app_config("reporting")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="reporting", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="reporting")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0001_term"),
        ("queueing", "0002_seed_teams_enquiry_types_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
