"""The record of daily usage emails sent; managers may read it in admin."""

import django.core.serializers.json
from django.contrib.auth.management import create_permissions
from django.db import migrations, models


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    config = apps.get_app_config("reporting")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    manager, _ = Group.objects.get_or_create(name="Manager")
    manager.permissions.add(
        Permission.objects.get(content_type__app_label="reporting", codename="view_dailyreport")
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    # The content type stays (Django never removes those by migration); the permission
    # goes, and with it every group's and user's grant of it.
    Permission.objects.filter(
        content_type__app_label="reporting", codename="view_dailyreport"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0002_report_permissions_for_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailyReport",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "day",
                    models.DateField(help_text="The local day the report covers.", unique=True),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("sending", "Sending"), ("sent", "Sent")],
                        default="sending",
                        max_length=10,
                    ),
                ),
                (
                    "claimed_at",
                    models.DateTimeField(help_text="When a run last took the day to send it."),
                ),
                (
                    "sent_at",
                    models.DateTimeField(blank=True, help_text="When it last went out.", null=True),
                ),
                ("recipients", models.JSONField(blank=True, default=list)),
                ("subject", models.CharField(blank=True, max_length=200)),
                (
                    "figures",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        encoder=django.core.serializers.json.DjangoJSONEncoder,
                        help_text="The figures as sent.",
                    ),
                ),
                ("times_sent", models.PositiveIntegerField(default=0)),
                (
                    "forced",
                    models.BooleanField(
                        default=False, help_text="The last send was asked for again."
                    ),
                ),
            ],
            options={
                "ordering": ["-day"],
                "default_permissions": ("view",),
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("status", "sending"),
                            models.Q(("sent_at__isnull", False), ("times_sent__gte", 1)),
                            _connector="OR",
                        ),
                        name="dailyreport_sent_when_and_how_often",
                        violation_error_message="A sent report needs its time and a send count.",
                    )
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
