"""``http.request``: calls an HTTP API once per input record (or once in all) and emits the responses.

Workflows are defined over an API, so a URL is untrusted: its host must be in ``WORKFLOW_HTTP_ALLOWED_HOSTS``
(``api.example.com``, ``*.example.com`` for subdomains, ``127.0.0.1:8000`` for one port). That is checked
when the workflow is defined, again before each request, and on every redirect hop (a redirect elsewhere
fails the node). Templates (``{{field}}``, from the record) may fill the path, query, headers and body, never
the scheme or host, so the create-time check is the whole story for the host.

Unsafe methods send ``Idempotency-Key: <execution>:<node>:<attempt>:<record index>``, so a server that honours
it does not apply a re-run of the same attempt twice. 5xx, 408, 429, timeouts and connection errors are
retryable; other unexpected statuses are not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urljoin, urlsplit

import requests
from django.conf import settings

from apps.workflows.engine.policies import duration_ms
from apps.workflows.nodes.base import (
    Category,
    ConfigField,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    register,
)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # a response is a record, stored with the node's output
# Response headers worth passing downstream; the rest (cookies among them) are dropped.
KEPT_HEADERS = ("content-type", "content-length", "etag", "last-modified", "location", "retry-after")
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_STATUS_PATTERN = re.compile(r"[1-5](?:xx|\d\d)")
_RETRYABLE_STATUSES = frozenset({408, 429})

# --------------------------------------------------------------------------------------------- hosts


def _allowed_hosts() -> list[str]:
    return list(getattr(settings, "WORKFLOW_HTTP_ALLOWED_HOSTS", []))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def host_allowed(url: str) -> bool:
    """Whether ``url``'s host (and port) matches an entry of the allow-list."""
    parts = urlsplit(url)
    host, port = (parts.hostname or "").lower(), parts.port or _default_port(parts.scheme)
    for entry in _allowed_hosts():
        allowed = urlsplit("//" + entry.strip().lower())
        if allowed.port is not None and allowed.port != port:
            continue
        pattern = allowed.hostname or ""
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def url_problems(url: str) -> list[str]:
    """What makes ``url`` unusable (empty when fine): not http(s), a templated host, a host not allowed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        return [f"Not a valid URL: {exc}."]
    if parts.scheme not in ("http", "https"):
        return ["Must be an http:// or https:// URL."]
    if "{{" in parts.netloc:
        return ["Templates may fill the path and the query, not the host."]
    if not parts.hostname:
        return ["Must name a host."]
    if not host_allowed(url):
        listed = ", ".join(_allowed_hosts()) or "empty"
        return [f"Host {parts.netloc} is not allowed (WORKFLOW_HTTP_ALLOWED_HOSTS: {listed})."]
    return []


class _AllowListSession(requests.Session):
    """Follows a redirect only to an allowed host; anything else fails the node."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None and not host_allowed(urljoin(resp.url, target)):
            host = urlsplit(urljoin(resp.url, target)).netloc
            raise NodeError(f"http.request: refused a redirect to {host}, which is not an allowed host")
        return target


# --------------------------------------------------------------------------------------------- templates


class TemplateError(NodeError):
    """A template names a field the record lacks; the same record would fail again."""


def _lookup(context: Any, path: str) -> Any:
    value = context if isinstance(context, dict) else {"value": context}
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"no field {path!r} to fill {{{{{path}}}}}")
        value = value[part]
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def render_text(template: str, context: Any, *, url: bool = False) -> str:
    """``template`` with each ``{{field}}`` replaced: strings as they are, other values as JSON; in a URL,
    percent-encoded."""
    fill = (lambda value: quote(_text(value), safe="")) if url else _text
    return _TEMPLATE.sub(lambda match: fill(_lookup(context, match.group(1))), template)


def render_json(template: Any, context: Any) -> Any:
    """A JSON body template: a string that is exactly one ``{{field}}`` takes the field's value (any JSON
    type); other strings are filled as text."""
    if isinstance(template, dict):
        return {key: render_json(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render_json(value, context) for value in template]
    if isinstance(template, str):
        whole = _TEMPLATE.fullmatch(template.strip())
        return _lookup(context, whole.group(1)) if whole else render_text(template, context)
    return template


# --------------------------------------------------------------------------------------------- requests


def _status_matches(status: int, expected: Sequence[Any]) -> bool:
    return any(
        status == item if isinstance(item, int) else str(status).startswith(item.rstrip("x"))
        for item in expected
    )


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


def _read_body(response: requests.Response, method: str) -> Any:
    """The body, at most ``MAX_RESPONSE_BYTES``: parsed JSON when the server says JSON, else text."""
    if method == "HEAD":
        return None
    content, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise NodeError(f"http.request: the response is larger than {MAX_RESPONSE_BYTES} bytes")
        content.append(chunk)
    raw = b"".join(content)
    if "json" in response.headers.get("content-type", "").lower():
        try:
            return json.loads(raw)
        except ValueError:
            pass  # a server that lies about its content type: keep the text
    return raw.decode(response.encoding or "utf-8", errors="replace")


def _where(url: str) -> str:
    # Without the query, which may carry an API key.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _status_error(method: str, url: str, status: int, body: Any, label: str) -> NodeError:
    excerpt = _text(body)[:200] if body not in (None, "") else ""
    retryable = status >= 500 or status in _RETRYABLE_STATUSES
    return NodeError(
        f"http.request: {label}{method} {_where(url)} answered {status} {excerpt}".rstrip(),
        retryable=retryable,
    )


def _exchange(
    session: requests.Session, method: str, url: str, request: dict[str, Any], label: str
) -> tuple[requests.Response, Any]:
    """The response and its body; transport failures as ``NodeError`` (retryable: the server may recover)."""
    try:
        with session.request(method, url, stream=True, **request) as response:
            return response, _read_body(response, method)
    except requests.Timeout as exc:
        message = f"{method} {_where(url)} timed out after {request['timeout']:g}s"
        raise NodeError(f"http.request: {label}{message}", retryable=True) from exc
    except requests.TooManyRedirects as exc:
        raise NodeError(f"http.request: {label}more than {MAX_REDIRECTS} redirects") from exc
    except requests.RequestException as exc:  # refused, reset, DNS
        raise NodeError(f"http.request: {label}{method} {_where(url)} failed: {exc}", retryable=True) from exc


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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        problems: dict[str, list[str]] = {}
        if found := url_problems(config["url"]):
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

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        if config.get("perRecord", False) and inputs:
            calls: list[tuple[Any, Any]] = [(record, record) for record in inputs]
        else:  # one request; templates see {"records": [...]}, and the default body is all the records
            calls = [({"records": list(inputs)}, list(inputs) if inputs else None)]
        with _AllowListSession() as session:
            session.max_redirects = MAX_REDIRECTS
            responses = []
            for index, (context, default_body) in enumerate(calls):
                if index and ctx.cancelled():
                    raise NodeError("http.request: the attempt was cancelled")
                label = f"record {index}: " if len(calls) > 1 else ""
                responses.append(self._send(session, ctx, config, index, context, default_body, label))
        ctx.log(f"http.request: {len(responses)} {config['method']} requests to {_where(config['url'])}")
        return NodeResult(records=responses, records_processed=len(inputs) if inputs else len(responses))

    def _send(
        self,
        session: requests.Session,
        ctx: NodeContext,
        config: Mapping[str, Any],
        index: int,
        context: Any,
        default_body: Any,
        label: str,
    ) -> dict[str, Any]:
        method, url = config["method"], render_text(config["url"], context, url=True)
        if not host_allowed(url):  # the settings may have changed since the workflow was defined
            raise NodeError(f"http.request: host {urlsplit(url).netloc} is not allowed")
        headers, data = self._payload(config, context, default_body)
        if method in UNSAFE_METHODS:
            headers["Idempotency-Key"] = f"{ctx.idempotency_key}:{index}"
        seconds = (duration_ms(config["timeout"]) or 10_000) / 1000
        request = {"headers": headers, "data": data, "timeout": seconds}
        response, body = _exchange(session, method, url, request, label)
        if not _status_matches(response.status_code, config["expectStatus"]):
            raise _status_error(method, url, response.status_code, body, label)
        kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        return {"status": response.status_code, "headers": kept, "body": body}

    def _payload(
        self, config: Mapping[str, Any], context: Any, default_body: Any
    ) -> tuple[dict[str, str], bytes | None]:
        """Headers and body bytes. Without a ``body``, unsafe methods send the record(s) as JSON."""
        headers = {name: render_text(value, context) for name, value in (config.get("headers") or {}).items()}
        body = config.get("body")
        if body is None and config["method"] in UNSAFE_METHODS and default_body is not None:
            body = default_body
        elif body is None:
            return headers, None
        has_type = any(name.lower() == "content-type" for name in headers)
        if isinstance(body, str):
            if not has_type:
                headers["Content-Type"] = "text/plain; charset=utf-8"
            return headers, render_text(body, context).encode()
        if not has_type:
            headers["Content-Type"] = "application/json"
        return headers, json.dumps(render_json(body, context), separators=(",", ":")).encode()


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
