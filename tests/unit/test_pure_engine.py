"""The engine and the node descriptions are pure: they validate and compile a definition in a Python without
Django, Celery or any installed package (issue 11); and every description has exactly one implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.workflows.engine.nodetypes import base as described
from apps.workflows.engine.nodetypes import catalogue
from apps.workflows.nodes import registry
from apps.workflows.nodes.base import implemented

ROOT = Path(__file__).resolve().parent.parent.parent

# Run by a bare interpreter: -I (no PYTHON* variables, no script directory on the path) and -S (no site, so
# no site-packages: neither Django, Celery, redis nor any driver can be found), with only the project root.
SCRIPT = r"""
import json, sys
root, files = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
try:
    import django  # noqa: F401
    django_found = True
except ImportError:
    django_found = False

from pathlib import Path
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.urlpolicy import AllowList
from apps.workflows.engine.validation import DefinitionInvalid, compile_definition, validate

sandbox = Sandbox(http_allow=AllowList.parse(["api.example.com"]), file_roots=(Path(files),))

def node(id, type, **config):
    return {"id": id, "nodeType": type, "config": config}

def body(nodes, pairs):
    edges = [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(pairs)]
    return {"id": "pure", "name": "pure", "nodes": nodes, "edges": edges}

chain = [("read", "call"), ("call", "double"), ("double", "approve"), ("approve", "later"), ("later", "out")]
valid = body(
    [
        node("read", "file.csv", path="in.csv"),
        node("call", "http.request", url="https://api.example.com/items/{{id}}", method="POST"),
        node("double", "map", expression="body.count * 2"),
        node("approve", "approval", timeout="1h"),
        node("later", "delay", duration="5m"),
        node("out", "console.log"),
    ],
    chain,
)
invalid = body(
    [
        node("read", "file.csv", path="/etc/passwd"),
        node("call", "http.request", url="http://169.254.169.254/latest/meta-data"),
        node("double", "map", expression="body.count *"),
        node("approve", "approval", timeout="soon"),
        node("later", "delay"),
        node("out", "celery.task", task="anything.at.all"),
    ],
    chain,
)

validate(valid, sandbox)
wf, graph = compile_definition(valid, sandbox, default_node_timeout_ms=60_000)
try:
    validate(invalid, sandbox)
    problems = {}
except DefinitionInvalid as exc:
    problems = exc.problems
third_party = sorted(
    name for name in sys.modules
    if name.split(".")[0] not in (*sys.stdlib_module_names, "apps", "__main__")
)
print(json.dumps({
    "django_found": django_found,
    "path": sys.path,
    "third_party": third_party,
    "order": list(graph.order),
    "nodes": {
        n.id: [n.category, n.inline, n.behavior, n.timeout_ms, n.wait and n.wait.kind]
        for n in graph.nodes.values()
    },
    "problems": problems,
}))
"""


def run_bare(files: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SCRIPT, str(ROOT), str(files)],
        env={},  # a clean environment: no DJANGO_SETTINGS_MODULE, no PYTHONPATH
        cwd=files,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_bare(tmp_path_factory.mktemp("pure-files"))


def test_the_bare_interpreter_has_no_django_and_no_site_packages(bare: dict[str, Any]) -> None:
    assert bare["django_found"] is False
    assert not any("site-packages" in entry for entry in bare["path"])


def test_validating_and_compiling_loads_nothing_but_the_standard_library_and_the_project(
    bare: dict[str, Any],
) -> None:
    assert bare["third_party"] == []


def test_a_definition_of_several_node_families_validates_and_compiles_without_django(
    bare: dict[str, Any],
) -> None:
    assert bare["order"] == ["read", "call", "double", "approve", "later", "out"]
    assert bare["nodes"] == {
        "read": ["source", False, "run", 60_000, None],
        "call": ["transform", False, "run", 60_000, None],
        "double": ["transform", True, "run", 60_000, None],
        "approve": ["transform", False, "wait", 60_000, "signal"],
        "later": ["transform", False, "wait", 60_000, "timer"],
        "out": ["sink", True, "run", 60_000, None],
    }


def test_an_invalid_definition_gets_its_named_problems_without_django(bare: dict[str, Any]) -> None:
    problems = bare["problems"]
    assert sorted(problems) == [
        "nodes[0].config.path",
        "nodes[1].config.url",
        "nodes[2].config.expression",
        "nodes[3].config.timeout",
        "nodes[4].config.duration",
        "nodes[5].config.task",
    ]
    assert "outside the allowed file roots" in problems["nodes[0].config.path"][0]
    assert "is not allowed: 169.254.169.254 is link-local" in problems["nodes[1].config.url"][0]
    assert "Give either duration or until." in problems["nodes[4].config.duration"][0]
    assert "WORKFLOW_CELERY_TASKS: none" in problems["nodes[5].config.task"][0]


def test_every_description_has_exactly_one_implementation_and_every_implementation_a_description() -> None:
    assert registry.mismatches() == []
    assert set(catalogue.descriptions()) == set(implemented())
    for key, implementation in implemented().items():
        assert implementation.node_type is catalogue.descriptions()[key]


def test_a_description_without_an_implementation_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class Orphan(described.NodeType):
        type_name = "orphan.sink"
        category = "sink"
        display_name = "Orphan"
        description = "Described, never implemented."

    monkeypatch.setitem(described._REGISTRY, ("sink", "orphan.sink"), Orphan())
    assert registry.mismatches() == ["node type ('sink', 'orphan.sink') has no implementation"]
