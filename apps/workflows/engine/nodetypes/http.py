"""``http.request``'s description: the checks a URL and the request's config pass when a workflow is defined.

Workflows are defined over an API, so a URL is untrusted: ``engine/urlpolicy.py`` reads it one way only and
matches its host against the sandbox's allow-list (``WORKFLOW_HTTP_ALLOWED_HOSTS``). Names are not resolved
here; the implementation (``apps/workflows/nodes/http.py``) checks everything again, DNS included, before each
request and on every redirect hop. Templates (``{{field}}``) may fill the path, query, headers and body, never
the scheme or the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import Category, ConfigField, NodeType, register
from apps.workflows.engine.policies import duration_ms
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.urlpolicy import AllowList, UrlRefused, check_syntax_and_host

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
AUTHORITY = re.compile(r"[^:/?#]*://([^/?#]*)")
_STATUS_PATTERN = re.compile(r"[1-5](?:xx|\d\d)")


def url_problems(url: str, allow: AllowList) -> list[str]:
    """What makes ``url`` unusable (empty when fine), without DNS: its reading, a templated host, a host
    outside the allow-list, a non-public IP literal. Names are resolved and checked when a request is made."""
    authority = AUTHORITY.match(url)
    if authority and ("{{" in authority.group(1) or "}}" in authority.group(1)):
        return ["Templates may fill the path and the query, not the host."]
    try:
        check_syntax_and_host(TEMPLATE.sub("x", url), allow)
    except UrlRefused as exc:
        return [str(exc)]
    return []


def _is_status(item: Any) -> bool:
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return 100 <= item <= 599
    return isinstance(item, str) and _STATUS_PATTERN.fullmatch(item) is not None


def _expect_problems(expected: Any) -> list[str]:
    if isinstance(expected, list) and expected and all(map(_is_status, expected)):
        return []
    return ["Must be a non-empty array of statuses (200) or classes (2xx)."]


class _HttpRequest(NodeType):
    icon = "globe"
    base_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("url", "string", "URL ({{field}} may fill the path and query)", required=True),
        ConfigField("method", "string", "Method", default="GET", choices=METHODS),
        ConfigField("headers", "object", "Headers ({{field}} templates allowed)"),
        ConfigField("body", "any", "Body: text with {{field}} templates, or a JSON object or array"),
        ConfigField("timeout", "any", "Timeout to connect and per read (10s, or seconds)", default="10s"),
        ConfigField("expectStatus", "array", "Expected statuses (200, 2xx)", default=["2xx"]),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        problems: Problems = {}
        if found := url_problems(config["url"], sandbox.http_allow):
            problems["url"] = found
        if any(not isinstance(v, str) for v in (config.get("headers") or {}).values()):
            problems["headers"] = ["Header values must be strings."]
        if not duration_ms(config["timeout"]):
            problems["timeout"] = [
                "Must be a positive duration such as 10s or 500ms, or a number of seconds."
            ]
        if found := _expect_problems(config["expectStatus"]):
            problems["expectStatus"] = found
        return problems


@register
class HttpRequest(_HttpRequest):
    type_name = "http.request"
    category: ClassVar[Category] = "transform"
    display_name = "HTTP request"
    description = (
        "Calls an HTTP API on an allowed host, once per input record (perRecord, the default) or once for "
        "all of them, and emits one record per response: {status, headers, body} (body parsed when JSON). "
        "{{field}} templates fill the URL's path and query, headers and body from the record; without a "
        "body, POST/PUT/PATCH/DELETE send the record as JSON, with an Idempotency-Key header."
    )
    fields = (
        *_HttpRequest.base_fields,
        ConfigField("perRecord", "boolean", "One request per record", default=True),
    )


@register
class HttpRequestSource(_HttpRequest):
    type_name = "http.request"
    category: ClassVar[Category] = "source"
    display_name = "HTTP request"
    description = (
        "Calls an HTTP API on an allowed host once and emits the response as one record: {status, headers, "
        "body} (body parsed when JSON). Unsafe methods send an Idempotency-Key header."
    )
    fields = _HttpRequest.base_fields
