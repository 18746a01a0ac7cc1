"""Seed what a new service needs on day one: its two teams, the original enquiry
types, the board's version row, and the three roles as groups with permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

TEAMS = [
    ("STUDYSmarter", "studysmarter", "STUDYSmarter Team Available", 1),
    ("Librarian", "librarian", "Librarians Available", 2),
]

ENQUIRY_TYPES = [
    "Essay",
    "Grammar",
    "Lab Report",
    "Assignment",
    "Literature Research",
    "Research Proposal",
    "Thesis/Paper",
    "IELTS",
    "Oral Presentation",
    "Referencing",
    "Finding Sources",
    "EndNote",
    "Other",
]

QUEUE_MODELS = ["team", "enquirytype", "visit", "visitevent", "staffingchange"]

ROLES = {
    "Student leader": [("queueing", "use_desk")],
    # Coordinators read visits; the reporting app adds its own permissions to this role.
    "Coordinator": [("queueing", "view_visit"), ("queueing", "view_team"),
                    ("queueing", "view_enquirytype")],
    "Manager": (
        [("queueing", "use_desk")]
        + [("queueing", f"{verb}_{model}") for model in QUEUE_MODELS
           for verb in ("add", "change", "delete", "view")]
        + [("accounts", f"{verb}_user") for verb in ("add", "change", "delete", "view")]
        + [("auth", "view_group")]
    ),
}


def seed(apps, schema_editor):
    Team = apps.get_model("queueing", "Team")
    EnquiryType = apps.get_model("queueing", "EnquiryType")
    Board = apps.get_model("queueing", "Board")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    for name, slug, label, order in TEAMS:
        Team.objects.get_or_create(
            slug=slug, defaults={"name": name, "available_label": label, "display_order": order}
        )
    for order, name in enumerate(ENQUIRY_TYPES, start=1):
        EnquiryType.objects.get_or_create(name=name, defaults={"display_order": order})
    Board.objects.get_or_create(pk=1)

    # Permissions are normally created after all migrations; the roles need them now.
    for label in ("auth", "accounts", "queueing"):
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None

    for role, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def unseed(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("queueing", "0001_initial"),
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
