"""``http.request``: calls an HTTP API once per input record (or once in all) and emits the responses.

Workflows are defined over an API, so a URL is untrusted: ``engine/urlpolicy.py`` decides which URLs may be
called (one strict reading of the URL, its host in ``WORKFLOW_HTTP_ALLOWED_HOSTS``, and no loopback, private
or link-local address unless an IP or CIDR entry lists it). The syntax and the host are checked when the
workflow is defined (the description, ``engine/nodetypes/http.py``); everything, DNS included (the system's
resolver, here), before each request and on every redirect hop, which this module follows itself. The
request then connects to an address that was checked (``_PinnedAdapter``), never to one that
``requests`` would resolve again, while the ``Host`` header, TLS SNI and certificate check keep the name.
Templates (``{{field}}``, from the record) may fill the path, query, headers and body, never scheme or host.

Unsafe methods send ``Idempotency-Key: <execution>:<node>:<attempt>:<record index>``, so a server that honours
it does not apply a re-run of the same attempt twice. 5xx, 408, 429, timeouts, connection errors and DNS
failures are retryable; other unexpected statuses, and refused URLs, are not.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from apps.workflows.engine.nodetypes import http
from apps.workflows.engine.nodetypes.http import AUTHORITY, TEMPLATE
from apps.workflows.engine.policies import duration_ms
from apps.workflows.engine.urlpolicy import (
    Checked,
    IPAddress,
    Resolver,
    Url,
    UrlRefused,
    UrlUnresolved,
    check,
)
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements
from apps.workflows.nodes.sandbox import allow_list

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # a response is a record, stored with the node's output
# Response headers worth passing downstream; the rest (cookies among them) are dropped.
KEPT_HEADERS = ("content-type", "content-length", "etag", "last-modified", "location", "retry-after")
_RETRYABLE_STATUSES = frozenset({408, 429})
# Request headers that carry credentials: not sent on to another origin after a redirect (as browsers do).
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-type", "content-length"})

# --------------------------------------------------------------------------------------------- hosts


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# How names resolve: the system's resolver; tests point it at names of their own.
resolver: Resolver = system_resolver


def _checked(url: str, label: str, *, redirect: bool, resolve: Resolver) -> Checked:
    """``url`` checked completely (DNS included), or a ``NodeError`` naming it and the reason."""
    try:
        return check(url, allow_list(), resolve)
    except UrlRefused as exc:
        raise NodeError(f"http.request: {label}{_refused(url, redirect)}: {exc}") from exc
    except UrlUnresolved as exc:
        raise NodeError(f"http.request: {label}{_refused(url, redirect)}: {exc}", retryable=True) from exc


def _refused(url: str, redirect: bool) -> str:
    if redirect:
        authority = AUTHORITY.match(url)
        shown = authority.group(1) if authority and authority.group(1) else url[:200]
        return f"refused a redirect to {shown}"
    return f"refused {url.partition('?')[0][:200]}"  # without the query, which may carry an API key


@dataclass(frozen=True)
class _Pin:
    url: Url
    address: IPAddress


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address in ``pin``, which the policy checked, instead of resolving the name again; a
    request whose URL is not the pinned one fails. TLS still sends and verifies the name (SNI, certificate),
    and connection pools are per address and name."""

    def __init__(self) -> None:
        super().__init__()
        self.pin: _Pin | None = None

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if self.pin is None or not _same_target(host_params, self.pin.url):
            raise NodeError(f"http.request: {request.url} is not the URL that was checked")
        host_params["host"] = str(self.pin.address)
        if self.pin.url.ip is None and host_params["scheme"] == "https":
            cast(dict[str, Any], pool_kwargs)["server_hostname"] = self.pin.url.host
        return host_params, pool_kwargs


def _same_target(host_params: _HostParams, url: Url) -> bool:
    """Whether ``requests``' own parse of the URL names the host and port that were checked."""
    port = host_params["port"] or (443 if host_params["scheme"] == "https" else 80)
    host = str(host_params["host"] or "")
    same_host = host == url.host if url.ip is None else host.strip("[]") == url.host
    return same_host and port == url.port and host_params["scheme"] == url.scheme


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the request failed before a connection existed (nothing was sent): the next address may do."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


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
    return TEMPLATE.sub(lambda match: fill(_lookup(context, match.group(1))), template)


def render_json(template: Any, context: Any) -> Any:
    """A JSON body template: a string that is exactly one ``{{field}}`` takes the field's value (any JSON
    type); other strings are filled as text."""
    if isinstance(template, dict):
        return {key: render_json(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render_json(value, context) for value in template]
    if isinstance(template, str):
        whole = TEMPLATE.fullmatch(template.strip())
        return _lookup(context, whole.group(1)) if whole else render_text(template, context)
    return template


# --------------------------------------------------------------------------------------------- requests


def _status_matches(status: int, expected: Sequence[Any]) -> bool:
    return any(
        status == item if isinstance(item, int) else str(status).startswith(item.rstrip("x"))
        for item in expected
    )


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


class _Client:
    """The HTTP client of one node attempt. It follows redirects itself, so that every hop is parsed, checked
    (DNS included) and connected to a checked address; at most ``MAX_REDIRECTS`` of them."""

    def __init__(self) -> None:
        self.session = requests.Session()
        # No proxy, .netrc or CA bundle from the environment: a proxy would connect to an unchecked address.
        self.session.trust_env = False
        self.adapter = _PinnedAdapter()
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        # One answer per name for the attempt: each is checked before use, so reusing it opens no gap.
        self._answers: dict[tuple[str, int], Sequence[str]] = {}

    def _resolve(self, host: str, port: int) -> Sequence[str]:
        if (host, port) not in self._answers:
            self._answers[host, port] = resolver(host, port)
        return self._answers[host, port]

    def close(self) -> None:
        self.session.close()

    def fetch(
        self, method: str, url: str, request: dict[str, Any], label: str
    ) -> tuple[requests.Response, Any]:
        """The final response and its body; refusals and transport failures as ``NodeError``."""
        headers, data, origin = dict(request["headers"]), request["data"], None
        for hop in range(MAX_REDIRECTS + 1):
            checked = _checked(url, label, redirect=hop > 0, resolve=self._resolve)
            if origin is not None and checked.url.origin != origin:
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            origin = checked.url.origin
            response, body, target = self._hop(method, checked, headers, data, request["timeout"], label)
            if target is None:
                return response, body
            url = urljoin(checked.url.geturl(), target)
            if _becomes_get(response.status_code, method):
                method, data = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
        raise NodeError(f"http.request: {label}more than {MAX_REDIRECTS} redirects")

    def _hop(
        self,
        method: str,
        checked: Checked,
        headers: dict[str, str],
        data: bytes | None,
        timeout: float,
        label: str,
    ) -> tuple[requests.Response, Any, str | None]:
        """One request: the response, its body (None for a redirect) and the redirect's target."""
        where = f"{method} {_where(checked.url.geturl())}"
        try:
            with self._send(method, checked, headers, data, timeout) as response:
                target = self.session.get_redirect_target(response)
                body = None if target is not None else _read_body(response, method)
                return response, body, target
        except requests.Timeout as exc:
            message = f"{where} timed out after {timeout:g}s"
            raise NodeError(f"http.request: {label}{message}", retryable=True) from exc
        except requests.RequestException as exc:  # refused, reset
            raise NodeError(f"http.request: {label}{where} failed: {exc}", retryable=True) from exc

    def _send(
        self, method: str, checked: Checked, headers: dict[str, str], data: bytes | None, timeout: float
    ) -> requests.Response:
        """Sends to the checked addresses in turn until one connects (as a resolver's list is used)."""
        prepared = self.session.prepare_request(
            requests.Request(method, checked.url.geturl(), headers=headers, data=data)
        )
        prepared.headers["Host"] = checked.url.host_header  # the name, not the address connected to
        for index, address in enumerate(checked.addresses):
            self.adapter.pin = _Pin(checked.url, address)
            try:
                return self.session.send(prepared, stream=True, timeout=timeout, allow_redirects=False)
            except requests.ConnectionError as exc:
                if index == len(checked.addresses) - 1 or not _never_connected(exc):
                    raise
            finally:
                self.adapter.pin = None
        raise AssertionError("unreachable: a checked URL has at least one address")


def _becomes_get(status: int, method: str) -> bool:
    """Whether a redirect turns the request into a GET without a body (as browsers and ``requests`` do)."""
    return (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST")


@implements(http.HttpRequest, http.HttpRequestSource)
class HttpRequest(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        if config.get("perRecord", False) and inputs:
            calls: list[tuple[Any, Any]] = [(record, record) for record in inputs]
        else:  # one request; templates see {"records": [...]}, and the default body is all the records
            calls = [({"records": list(inputs)}, list(inputs) if inputs else None)]
        client = _Client()
        try:
            responses = []
            for index, (context, default_body) in enumerate(calls):
                if index and ctx.cancelled():
                    raise NodeError("http.request: the attempt was cancelled")
                label = f"record {index}: " if len(calls) > 1 else ""
                responses.append(self._send(client, ctx, config, index, context, default_body, label))
        finally:
            client.close()
        ctx.log(f"http.request: {len(responses)} {config['method']} requests to {_where(config['url'])}")
        return NodeResult(records=responses, records_processed=len(inputs) if inputs else len(responses))

    def _send(
        self,
        client: _Client,
        ctx: NodeContext,
        config: Mapping[str, Any],
        index: int,
        context: Any,
        default_body: Any,
        label: str,
    ) -> dict[str, Any]:
        method, url = config["method"], render_text(config["url"], context, url=True)
        headers, data = self._payload(config, context, default_body)
        if method in UNSAFE_METHODS:
            headers["Idempotency-Key"] = f"{ctx.idempotency_key}:{index}"
        seconds = (duration_ms(config["timeout"]) or 10_000) / 1000
        request = {"headers": headers, "data": data, "timeout": seconds}
        response, body = client.fetch(method, url, request, label)
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
