"""Drafts: a save that does not validate is kept on the workflow row (``draft``, ``draft_problems``), never
as a version, so that versions stay what executions pin: valid definitions (docs/architecture.md, Drafts)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0009_execution_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="draft",
            field=models.JSONField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="draft_problems",
            field=models.JSONField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="workflow",
            name="draft_revision",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
    ]
