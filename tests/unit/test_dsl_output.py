"""The DSL's defaults on output (engine/dsl_output.py): filled where the original required a field, total on
whatever a draft holds, and never a change of what was posted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apps.workflows.engine.dsl_output import with_defaults

AT = {"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-02T00:00:00.000Z"}


def test_a_bare_definition_gets_every_field_the_original_required() -> None:
    bare = {
        "id": "w",
        "name": "n",
        "nodes": [
            {"id": "a", "nodeType": "sequence.numbers"},
            {"id": "b", "nodeType": "filter"},
            {"id": "c", "nodeType": "no.such.type"},
        ],
        "edges": [{"id": "e1", "source": "a", "target": "b"}, {"id": "e2", "source": "b", "target": "c"}],
    }
    posted = copy.deepcopy(bare)
    shown = with_defaults(bare, **AT)
    assert bare == posted  # the stored body is not changed
    assert {k: shown[k] for k in ("description", "version", "author", "tags")} == {
        "description": "",
        "version": "1.0",
        "author": "",
        "tags": [],
    }
    assert shown["metadata"] == {"createdAt": AT["created_at"], "updatedAt": AT["updated_at"]}
    assert [(n["type"], n["label"], n["position"], n["config"]) for n in shown["nodes"]] == [
        ("source", "a", {"x": 0, "y": 0}, {}),
        ("transform", "b", {"x": 0, "y": 0}, {}),
        ("sink", "c", {"x": 0, "y": 0}, {}),  # an unknown type: its place in the graph
    ]
    assert shown["edges"][0] == {
        "id": "e1",
        "source": "a",
        "target": "b",
        "sourceHandle": "out",
        "targetHandle": "in",
    }


def test_what_the_client_sent_is_kept() -> None:
    full = {
        "id": "w",
        "name": "n",
        "description": "d",
        "version": "2",
        "author": "me",
        "tags": ["t"],
        "metadata": {"createdAt": "x", "updatedAt": "y", "schedule": {"enabled": False}},
        "nodes": [
            {
                "id": "a",
                "type": "sink",
                "nodeType": "console.log",
                "label": "A",
                "position": {"x": 3, "y": 4},
                "config": {"k": 1},
                "style": {},
            }
        ],
        "edges": [
            {
                "id": "e",
                "source": "a",
                "target": "a",
                "sourceHandle": "s",
                "targetHandle": "t",
                "animated": True,
            }
        ],
    }
    assert with_defaults(full, **AT) == full


@pytest.mark.parametrize(
    "draft",
    [
        None,
        [],
        "text",
        {"id": "w"},
        {"id": "w", "nodes": "x", "edges": 3, "metadata": []},
        {
            "id": "w",
            "nodes": [None, 1, {"id": ["unhashable"]}, {"id": {"a": 1}, "nodeType": 5}],
            "edges": [None, {"source": []}],
        },
        {"id": "w", "tags": None, "metadata": None, "nodes": [{"label": None, "position": None}]},
    ],
)
def test_any_draft_is_shown_without_an_error(draft: Any) -> None:
    shown = with_defaults(draft, **AT)
    if isinstance(draft, dict):
        assert shown["tags"] == [] or shown["tags"] == draft.get("tags")
    else:
        assert shown == draft
