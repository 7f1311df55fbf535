"""The cluster's id (``ClusterIdentity``), generated once, here: the first migration of a new database makes a
new cluster. Its Redis keys and queues are claimed for it at every process start (``apps/cluster/startup.py``)."""

import uuid
from typing import Any

from django.db import migrations, models


def create_identity(apps: Any, schema_editor: Any) -> None:
    identity = apps.get_model("cluster", "ClusterIdentity")
    identity.objects.get_or_create(pk=1, defaults={"cluster_id": str(uuid.uuid4())})


class Migration(migrations.Migration):
    dependencies = [("cluster", "0005_rename_node_to_member")]

    operations = [
        migrations.CreateModel(
            name="ClusterIdentity",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("cluster_id", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(create_identity, migrations.RunPython.noop),
    ]
