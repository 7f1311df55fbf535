"""Implementations of the nodes the engine itself drives (descriptions: ``engine/nodetypes/control.py``).

``delay``, ``wait.signal`` and ``approval`` wait and ``celery.task`` is sent as a Celery task
(``services/celery_nodes.py``): the engine never runs them, and their ``run`` says so if it is ever called.
``execution.input`` outputs the execution's input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.workflows.engine.nodetypes import control
from apps.workflows.nodes.base import NodeContext, NodeImplementation, NodeResult, implements


@implements(control.Delay, control.WaitSignal, control.WaitSignalSource, control.Approval)
class Waiting(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        raise RuntimeError(f"{self.type_name} is driven by the engine and never run")


@implements(control.CeleryTaskTransform, control.CeleryTaskSink)
class CeleryTask(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        raise RuntimeError("celery.task is sent by the engine and never run")


@implements(control.ExecutionInput)
class ExecutionInput(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        return NodeResult([dict(ctx.input)], 1)
