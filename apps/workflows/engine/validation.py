"""Definition validation: the DSL's shape, then the graph's meaning, against the node catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine import dsl, graph
from apps.workflows.engine.graph import Graph, NodeInfo
from apps.workflows.nodes import registry


class DefinitionInvalid(ValueError):
    """The workflow definition is invalid; ``problems`` maps each offending field to what is wrong."""

    def __init__(self, problems: dsl.Problems) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
        self.problems = problems


def catalogue_resolver(node_type: str, declared: str | None, has_in: bool, has_out: bool) -> NodeInfo | None:
    impl = registry.resolve(node_type, declared, has_inputs=has_in, has_outputs=has_out)
    if impl is None:
        return None
    return NodeInfo(impl.category, impl.inline, impl.validate, impl.behavior, impl.wait_spec)


def validate(body: Any) -> dsl.WorkflowDef:
    """The parsed definition, or ``DefinitionInvalid`` listing every problem."""
    wf, problems = dsl.parse(body)
    if wf is None:
        raise DefinitionInvalid(problems)
    problems = graph.check(wf, catalogue_resolver, registry.type_names())
    if problems:
        raise DefinitionInvalid(problems)
    return wf


def compile_definition(
    body: Mapping[str, Any], default_node_timeout_ms: int | None = None
) -> tuple[dsl.WorkflowDef, Graph]:
    """Parse and compile a stored (already validated) definition."""
    wf = validate(body)
    return wf, graph.compile_graph(wf, catalogue_resolver, default_node_timeout_ms)
