"""Definition validation: the DSL's shape, then the graph's meaning, against the node descriptions and the
sandbox (what the operator allows nodes to reach). Pure: it runs without Django."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine import dsl, graph
from apps.workflows.engine.graph import Graph, NodeInfo, Resolver
from apps.workflows.engine.nodetypes import catalogue
from apps.workflows.engine.sandbox import Sandbox


class DefinitionInvalid(ValueError):
    """The workflow definition is invalid; ``problems`` maps each offending field to what is wrong."""

    def __init__(self, problems: dsl.Problems) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
        self.problems = problems


def resolver(sandbox: Sandbox) -> Resolver:
    """The catalogue as ``graph`` reads it, with each node type's checks bound to ``sandbox``."""

    def resolve(node_type: str, declared: str | None, has_in: bool, has_out: bool) -> NodeInfo | None:
        found = catalogue.resolve(node_type, declared, has_inputs=has_in, has_outputs=has_out)
        if found is None:
            return None
        return NodeInfo(
            found.category,
            found.inline,
            lambda config: found.validate(config, sandbox),
            found.behavior,
            found.wait_spec,
        )

    return resolve


def validate(body: Any, sandbox: Sandbox) -> dsl.WorkflowDef:
    """The parsed definition, or ``DefinitionInvalid`` listing every problem."""
    wf, problems = dsl.parse(body)
    if wf is None:
        raise DefinitionInvalid(problems)
    problems = graph.check(wf, resolver(sandbox), catalogue.type_names())
    if problems:
        raise DefinitionInvalid(problems)
    return wf


def compile_definition(
    body: Mapping[str, Any], sandbox: Sandbox, default_node_timeout_ms: int | None = None
) -> tuple[dsl.WorkflowDef, Graph]:
    """Parse and compile a stored definition, validating it again under ``sandbox``."""
    wf = validate(body, sandbox)
    return wf, graph.compile_graph(wf, resolver(sandbox), default_node_timeout_ms)
