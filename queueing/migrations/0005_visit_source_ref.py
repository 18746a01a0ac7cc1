"""Visits brought in from another system keep where they came from ("legacy:123"), so
importing the same file twice adds nothing the second time; the import itself is
recorded as an "imported" event on each visit."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("queueing", "0004_export_visits_permission")]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="source_ref",
            field=models.CharField(
                blank=True, editable=False, max_length=64, verbose_name="source reference"
            ),
        ),
        migrations.AddConstraint(
            model_name="visit",
            # Desk visits have no source: only the ones that do must be unique.
            constraint=models.UniqueConstraint(
                condition=models.Q(("source_ref", ""), _negated=True),
                fields=("source_ref",),
                name="visit_source_ref_unique",
            ),
        ),
        migrations.AlterField(
            model_name="visitevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("added", "Added to queue"),
                    ("started", "Session started"),
                    ("start_undone", "Start undone"),
                    ("finished", "Session finished"),
                    ("finish_undone", "Finish undone"),
                    ("removed", "Removed from queue"),
                    ("remove_undone", "Removal undone"),
                    ("queue_closed", "Queue closed (out of time)"),
                    ("corrected", "Details corrected"),
                    ("transferred", "Transferred to another team"),
                    ("imported", "Imported"),
                ],
                max_length=16,
            ),
        ),
    ]
