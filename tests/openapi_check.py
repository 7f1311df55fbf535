"""Every response a test receives is checked against the OpenAPI description of its route, so the docs
cannot drift from what the views answer (issue 11: "one description per response").

The schema is the one ``GET /api/schema/`` serves, generated in this process by the same drf-spectacular
generator and the same code as the gateway (no network, no gateway needed). A response is checked as follows:

- **A route in the schema, a documented method**: the status must be documented for the operation, and the
  answer's media type must be documented for that status, and ``application/json`` bodies must match the
  response's schema, validated as JSON Schema with ``$ref`` resolved (``text/plain`` is not checked further).
- **Stricter than OpenAPI on purpose**: an object schema that lists ``properties`` and says nothing about
  ``additionalProperties`` is closed, so a field the view adds without describing it is a mismatch (OpenAPI
  would allow it silently). A description that is really open says ``additionalProperties`` itself.
- OpenAPI 3.0's ``nullable`` becomes JSON Schema's ``null`` type; ``format: date-time`` is checked (RFC 3339).
- **A route in the schema, a method it does not document**: only a refusal in the error shape may come back
  (401, 403 or 405): anything else means the view serves a method the schema does not describe.
- **A path under ``/api/`` that no schema route matches**: if Django routes it to a view, the route is missing
  from the schema, and that fails. Otherwise the path is unknown, and the answer must be the 404 error shape.
  ``/api/schema/`` and ``/api/docs/`` serve the description itself and are not checked.
- **Other paths outside the schema** (``/admin/``, static files) are not API routes and are not checked.
  ``/health*`` and ``/monitoring/`` are in the schema, so they are checked as above.

``check_response`` fails the running test with ``pytest.fail`` (a ``BaseException``), so that polling loops
that retry on ``Exception`` (``harness.wait_for``) stop at the first mismatch instead of timing out on it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
import pytest
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

Schema = dict[str, Any]

NOT_CHECKED = ("/api/schema/", "/api/docs/")  # the description itself, and its HTML viewer
REFUSALS = frozenset({401, 403, 405})  # what a view may answer to a method the schema does not document
ERROR_SCHEMA = "#/components/schemas/Error"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # "/api/v1/executions/{execution_id}"
    spec: Schema

    @property
    def id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.id})"


# --- the schema -------------------------------------------------------------------------------------------


@functools.cache
def schema() -> Schema:
    """The OpenAPI document ``GET /api/schema/?format=json`` serves, as JSON (lazy strings rendered)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return dict(json.loads(OpenApiJsonRenderer().render(generated)))


def operations() -> list[Operation]:
    methods = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    return [
        Operation(method.upper(), template, spec)
        for template, item in schema()["paths"].items()
        for method, spec in item.items()
        if method in methods
    ]


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Path templates, the most literal first: ``/events/stats`` wins over ``/events/{event_type}``, as
    Django's URL order makes it."""
    templates = sorted(schema()["paths"], key=lambda t: (t.count("{"), -len(t)))
    return [(_template_regex(t), t) for t in templates]


def template_of(path: str) -> str | None:
    """The schema's path template that ``path`` (without its query string) falls under, if any; a trailing
    slash the route does not have is served as if absent (``workflow_engine/api/slashes.py``), so too here."""
    found = next((t for regex, t in _templates() if regex.match(path)), None)
    if found is None and len(path) > 1 and path.endswith("/"):
        return template_of(path.rstrip("/"))
    return found


def find(method: str, path: str) -> Operation | None:
    template = template_of(path)
    if template is None:
        return None
    spec = schema()["paths"][template].get(method.lower())
    return Operation(method.upper(), template, spec) if spec is not None else None


# --- OpenAPI 3.0 schema objects -> JSON Schema ----------------------------------------------------------


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema object -> JSON Schema 2020-12: ``nullable`` becomes a ``null`` type, boolean
    exclusive bounds become numbers, and objects that list their properties are closed (see the module)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True:
            out[bound] = out.pop(limit)
        elif out.get(bound) is False:
            del out[bound]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        out = _nullable(out)
    return out


def _nullable(node: Schema) -> Schema:
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        return node
    return {"anyOf": [node, {"type": "null"}]}  # a $ref, allOf, oneOf: null or the thing


@functools.cache
def _components() -> Schema:
    return {"components": to_json_schema(copy.deepcopy(schema().get("components", {})))}


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    if not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a real date: no 2024-02-30
    return True


def validate(body: Any, openapi_schema: Schema) -> Iterator[jsonschema.ValidationError]:
    """The JSON Schema errors of ``body`` against an OpenAPI schema object of this document."""
    root = {**to_json_schema(copy.deepcopy(openapi_schema)), **_components()}
    validator = jsonschema.Draft202012Validator(root, format_checker=_FORMATS)
    yield from sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))


def _explain(error: jsonschema.ValidationError) -> str:
    """One line per error; for anyOf (a nullable $ref) the closest branch's reason, not "not valid under
    any of the given schemas"."""
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None:
            return f"{best.json_path}: {best.message}"
    return f"{error.json_path}: {error.message}"


# --- responses ----------------------------------------------------------------------------------------------


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text) if text else None
    except ValueError:
        return False, None


def _documented(operation: Operation, status: int, content_type: str, text: str) -> list[str]:
    responses = operation.spec.get("responses", {})
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        return [f"status {status} is not documented (documented: {', '.join(sorted(responses))})"]
    content = response.get("content") or {}
    if not content:
        return [] if not text else [f"status {status} documents no body, but one came: {text[:200]!r}"]
    if content_type not in content:
        return [f"status {status} documents {', '.join(content)}, but the answer is {content_type}"]
    if content_type != "application/json":
        return []  # text/plain: the media type is all the description says
    is_json, body = _parse_json(text)
    if not is_json:
        return [f"status {status} documents JSON, but the body is not: {text[:200]!r}"]
    body_schema = content[content_type].get("schema", {})
    return [f"status {status}: {_explain(e)}" for e in validate(body, body_schema)]


def _outside_schema(method: str, path: str, status: int, content_type: str, text: str) -> list[str]:
    if not path.startswith("/api/") or path.startswith(NOT_CHECKED):
        return []
    try:
        match = resolve(urllib.parse.unquote(path))
    except Resolver404:
        match = None
    if match is not None:
        return [
            f"{method} {path} reaches view {match.view_name!r}, which the OpenAPI schema does not describe"
        ]
    if status != 404:
        return [f"{method} {path} matches no route, yet it answered {status} instead of a 404"]
    is_json, body = _parse_json(text)
    if not is_json:
        return [f"{method} {path}: the 404 of an unknown path is not JSON: {text[:200]!r}"]
    return [f"404 of an unknown path: {_explain(e)}" for e in validate(body, {"$ref": ERROR_SCHEMA})]


def problems(method: str, path: str, status: int, content_type: str, text: str) -> list[str]:
    """What is wrong with this response according to the schema; empty when it matches."""
    path = urllib.parse.urlsplit(path).path
    template = template_of(path)
    if template is None:
        return _outside_schema(method, path, status, content_type, text)
    operation = find(method, path)
    if operation is None:
        if status in REFUSALS:
            is_json, body = _parse_json(text)
            found = list(validate(body, {"$ref": ERROR_SCHEMA})) if is_json else []
            return [f"refusal {status} of an undocumented method: {_explain(e)}" for e in found]
        return [f"{method} {template} is not in the schema, yet the view answered {status}"]
    return [f"{operation}: {p}" for p in _documented(operation, status, content_type, text)]


def check_response(method: str, path: str, status: int, content_type: str, text: str) -> None:
    """Fail the running test when the response does not match its route's OpenAPI description."""
    found = problems(method, path, status, content_type, text)
    if found:
        listed = "\n  ".join(found)
        pytest.fail(
            f"{method} {path} answered {status}, which its OpenAPI description does not allow:\n  {listed}\n"
            f"body: {text[:1000]}"
        )
