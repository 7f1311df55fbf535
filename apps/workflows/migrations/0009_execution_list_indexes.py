"""The global execution list's indexes (services/listing.py): one for each filter of
``GET /api/v1/executions``. The workflow filter uses ``execution_workflow_recent`` (0005), the id prefix
(``LIKE 'exec_3f%'``) the ``varchar_pattern_ops`` index Django gives a text primary key; the others are new.
Their query plans: docs/benchmarks.md.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0008_role_groups"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(fields=["-created_at", "-id"], name="execution_recent"),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(fields=["status", "-created_at", "-id"], name="execution_status_recent"),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(fields=["trigger", "-created_at", "-id"], name="execution_trigger_recent"),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("ended_at__isnull", False)), fields=["ended_at"], name="execution_ended"
            ),
        ),
    ]
