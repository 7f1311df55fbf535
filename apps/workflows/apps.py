from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        _register_hooks()
        from apps.workflows.private_paths import root_problems
        from workflow_engine import tunables

        # file roots must not reach the engine's own files: a rule of this app, checked with the tunables
        tunables.register_check(lambda loaded: root_problems(loaded.file_roots))
        # every process (gateway, worker, coordinator, manage.py) refuses a bad configuration at start
        tunables.reload()
        from apps.workflows.nodes.sandbox import allow_list

        allow_list()  # WORKFLOW_HTTP_ALLOWED_HOSTS: an entry it cannot read is ImproperlyConfigured


def _register_hooks() -> None:
    """What the workflows app does for the cluster beneath it (``apps/cluster/hooks.py``): recover executions
    of shards a worker receives, fire durable timers on the leader, sweep for stuck executions, re-drive node
    attempts of lost members, and count active executions per shard."""
    from apps.cluster import hooks
    from apps.workflows.services import placement, recovery, sweeper, timers

    hooks.on_shards_acquired(recovery.recover_shards)
    hooks.on_leader_tick(timers.fire_due)
    hooks.on_sweep(sweeper.sweep)
    hooks.on_members_lost(sweeper.redrive_after_member_loss)
    hooks.set_shard_load(placement.active_by_shard)
