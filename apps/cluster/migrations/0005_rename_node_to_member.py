"""A host is a "member" everywhere in the code: the ``ClusterNode`` model becomes ``ClusterMember`` (table
``cluster_clustermember``) and its key ``node_id`` becomes ``member_id``. Rows, values and indexes are kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cluster", "0004_move_reason_member_left")]

    operations = [
        migrations.RenameModel(old_name="ClusterNode", new_name="ClusterMember"),
        migrations.RenameField(model_name="clustermember", old_name="node_id", new_name="member_id"),
        migrations.RenameIndex(
            model_name="clustermember", new_name="cluster_member_state_seen", old_name="cluster_node_state_seen"
        ),
    ]
