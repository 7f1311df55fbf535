"""Which URLs ``http.request`` may call, decided on the address it connects to (against request forgery).

A definition is posted over the API, so its URL is hostile until checked. Three rules close the known tricks:

1. **One reading of a URL.** Parsers disagree on odd URLs (``http://a\\@b/`` is host ``b`` to ``urlsplit`` and
   host ``a`` to ``requests``), so a URL any two of them could read differently is refused outright: a
   backslash, user information (``@``), ``%`` in the host, whitespace or control characters, a trailing dot, a
   non-ASCII host, and every IPv4 form but the plain dotted quad (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
   ``127.1``). What is left has one meaning, and the request is rebuilt from the parts parsed here.
2. **The address is what is checked.** The host is resolved (by the resolver ``check`` is given), *every*
   address it resolves to is checked, and the request connects to one of exactly those addresses
   (``apps/workflows/nodes/http.py`` pins it), so DNS cannot answer
   differently between the check and the connection (rebinding). Each redirect hop goes through the same
   check.
3. **Non-public addresses need an explicit entry.** Loopback, private, link-local (the cloud metadata service
   at 169.254.169.254), shared (CGNAT), unspecified, multicast and reserved addresses, and IPv6 addresses that
   embed one of them, are refused unless an IP or CIDR entry of the allow-list covers them; an allowed *name*
   that resolves to one is refused too (``localhost``, or a public name pointed at 127.0.0.1).

The allow-list (``WORKFLOW_HTTP_ALLOWED_HOSTS``) holds entries of these forms, each with an optional ``:port``
(without one, any port): a name (``api.example.com``), a wildcard for subdomains (``*.example.com``, not
``example.com`` itself), an IP address (``127.0.0.1:8000``, ``[::1]:8000``) or a CIDR range (``10.0.0.0/8``,
``[fd00::/8]:443``; a bare IPv6 address or range takes no port). A URL's host must match an entry of its kind:
a name entry never allows an IP literal, and an IP entry never allows a name.

Pure (the engine's layer): validation uses the reading and the allow-list; the resolver is a parameter of
``check``, given by ``apps/workflows/nodes/http.py`` (the system's DNS) or by a test.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as text; raises ``OSError`` when the name does not resolve."""

SETTING = "WORKFLOW_HTTP_ALLOWED_HOSTS"
MAX_URL_LENGTH = 8192
_SCHEMES = {"http": 80, "https": 443}
_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# WHATWG reads a host whose last label is a number as an IPv4 address, in decimal, octal or hex.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]{1,5}")
_SHARED = IPv4Network("100.64.0.0/10")  # carrier-grade NAT; Python's is_private leaves it out
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A URL ``http.request`` may not call; the message says why, for a person."""


class UrlUnresolved(OSError):
    """The host did not resolve (a DNS failure may be temporary)."""


# --------------------------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class Url:
    """A URL in its one reading: what the request is rebuilt from."""

    scheme: str
    host: str  # a lower-case name, or an IP address in canonical text (IPv6 without brackets)
    port: int
    explicit_port: bool
    rest: str  # path and query, without the fragment; "" or starting with "/" or "?"
    ip: IPAddress | None

    @property
    def bracketed_host(self) -> str:
        return f"[{self.host}]" if isinstance(self.ip, IPv6Address) else self.host

    @property
    def netloc(self) -> str:
        return self.bracketed_host + (f":{self.port}" if self.explicit_port else "")

    @property
    def host_header(self) -> str:
        default = self.port == _SCHEMES[self.scheme]
        return self.bracketed_host + ("" if default else f":{self.port}")

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    def geturl(self) -> str:
        rest = self.rest if self.rest.startswith("/") else "/" + self.rest
        return f"{self.scheme}://{self.netloc}{rest}"


def parse_url(text: str) -> Url:
    """``text`` in its one reading, or ``UrlRefused`` when parsers could read it differently."""
    if not isinstance(text, str) or not text:
        raise UrlRefused("Must be a non-empty string.")
    if len(text) > MAX_URL_LENGTH:
        raise UrlRefused(f"Must be at most {MAX_URL_LENGTH} characters.")
    if _CONTROL_OR_SPACE.search(text):
        raise UrlRefused("Must not contain whitespace or control characters.")
    if "\\" in text:
        raise UrlRefused(
            "Must not contain a backslash: parsers disagree on it (some read it as /, which ends the host)."
        )
    form = _FORM.fullmatch(text)
    if form is None or form.group(1).lower() not in _SCHEMES:
        raise UrlRefused("Must be an http:// or https:// URL.")
    scheme, after = form.group(1).lower(), form.group(2)
    if not after.startswith("//"):
        raise UrlRefused(f"Must be an absolute URL: {scheme}://host/path.")
    authority, rest = _split_authority(after[2:])
    host, ip, port = _parse_authority(authority, scheme)
    return Url(scheme, host, port or _SCHEMES[scheme], port is not None, rest.partition("#")[0], ip)


def _split_authority(text: str) -> tuple[str, str]:
    end = next((i for i, char in enumerate(text) if char in "/?#"), len(text))
    return text[:end], text[end:]


def _parse_authority(authority: str, scheme: str) -> tuple[str, IPAddress | None, int | None]:
    if "@" in authority:
        raise UrlRefused(
            "Must not contain user information (user@host): parsers disagree on where the host starts; "
            "send credentials in a header."
        )
    if "%" in authority:
        raise UrlRefused("Must not contain % in the host (percent-encoding or an IPv6 zone index).")
    if not authority.isascii():
        raise UrlRefused("The host must be ASCII: write an internationalised name in its xn-- form.")
    if authority.startswith("["):
        inner, closed, tail = authority[1:].partition("]")
        if not closed:
            raise UrlRefused(f"{authority} opens an IPv6 address with [ and never closes it.")
        ipv6 = _ipv6_literal(inner)
        return ipv6.compressed, ipv6, _port(tail, authority)
    host, colon, port_text = authority.partition(":")
    port = _port(colon + port_text, authority)
    if not host:
        raise UrlRefused("Must name a host.")
    name, ip = _host(host.lower())
    return name, ip, port


def _port(tail: str, authority: str) -> int | None:
    if not tail:
        return None
    digits = tail[1:] if tail.startswith(":") else ""
    if not _PORT.fullmatch(digits) or not 0 < int(digits) <= 65535:
        raise UrlRefused(f"{authority} has no valid port (a number from 1 to 65535 after a colon).")
    return int(digits)


def _ipv6_literal(text: str) -> IPv6Address:
    try:
        ip = IPv6Address(text)
    except ValueError as exc:
        raise UrlRefused(f"[{text}] is not a valid IPv6 address.") from exc
    if ip.ipv4_mapped is not None or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        raise UrlRefused(f"[{text}] is an IPv4 address written as IPv6: write the IPv4 address itself.")
    return ip


def _host(host: str) -> tuple[str, IPAddress | None]:
    """A name, or a plain dotted-quad IPv4 address (the only IPv4 form every parser reads alike)."""
    if host.endswith("."):
        raise UrlRefused(f"{host} ends with a dot: write the name without it.")
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        try:
            ip = IPv4Address(host)
        except ValueError:
            ip = None
        if ip is None or str(ip) != host:
            raise UrlRefused(
                f"{host} is not a plain dotted IPv4 address: decimal, octal, hex and short forms "
                "(2130706433, 0177.0.0.1, 0x7f.1, 127.1) are refused."
            )
        return host, ip
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise UrlRefused(f"{host} is not a valid host name.")
    return host, None


# --------------------------------------------------------------------------------------------- addresses


def non_public_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` non-public ("loopback", "private", ...), or None for a public address. An IPv6
    address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged by that one too."""
    if isinstance(ip, IPv6Address):
        for embedded in _embedded_ipv4(ip):
            if kind := non_public_kind(embedded):
                return f"{kind} (the IPv4 address {embedded} inside it)"
        if ip.ipv4_mapped is not None:
            return None  # a public IPv4 address, as IPv6
    checks: tuple[tuple[str, bool], ...] = (
        ("unspecified", ip.is_unspecified or (isinstance(ip, IPv4Address) and ip in _THIS_NETWORK)),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared address space (carrier-grade NAT)", isinstance(ip, IPv4Address) and ip in _SHARED),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not globally routable", not ip.is_global),
    )
    return next((kind for kind, found in checks if found), None)


def _embedded_ipv4(ip: IPv6Address) -> list[IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if (ip in _IPV4_COMPATIBLE and int(ip) > 1) or ip in _NAT64:
        found.append(IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def _plain(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is (what the kernel connects to)."""
    return ip.ipv4_mapped if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None else ip


# --------------------------------------------------------------------------------------------- allow-list


@dataclass(frozen=True)
class Entry:
    """One allow-list entry: a name (``*.`` for subdomains) or an IP network, with an optional port."""

    text: str
    port: int | None
    name: str | None = None
    network: IPNetwork | None = None

    def allows_name(self, host: str, port: int) -> bool:
        if self.name is None or self.port not in (None, port):
            return False
        if self.name.startswith("*."):
            return host.endswith(self.name[1:])
        return host == self.name

    def covers(self, ip: IPAddress, port: int) -> bool:
        return self.network is not None and self.port in (None, port) and _plain(ip) in self.network


def parse_entry(text: str) -> Entry:
    """An allow-list entry, or ``ValueError`` saying what is wrong with it."""
    entry = text.strip().lower()
    if entry.startswith("["):
        inner, closed, tail = entry[1:].partition("]")
        if not closed:
            raise ValueError(f"{text!r} is not a valid IP address or CIDR range: no closing ]")
        return Entry(text, _entry_port(tail, text), network=_network(inner, text))
    if entry.count(":") > 1:  # a bare IPv6 address or range: its colons are not a port
        return Entry(text, None, network=_network(entry, text))
    host, colon, port = entry.partition(":")
    port_number = _entry_port(colon + port, text)
    if "/" in host or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return Entry(text, port_number, network=_network(host, text))
    name = host.removeprefix("*.")
    if not _HOSTNAME.fullmatch(name) or len(name) > 253:
        raise ValueError(
            f"{text!r} is not a host name, *.domain, IP address or CIDR range (with an optional :port)"
        )
    return Entry(text, port_number, name=host)


def _entry_port(tail: str, text: str) -> int | None:
    try:
        return _port(tail, text)
    except UrlRefused as exc:
        raise ValueError(f"{text!r} has no valid port") from exc


def _network(text: str, entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not a valid IP address or CIDR range: {exc}") from exc


@dataclass(frozen=True)
class AllowList:
    entries: tuple[Entry, ...]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> AllowList:
        return cls(tuple(parse_entry(text) for text in texts if text.strip()))

    def describe(self) -> str:
        return ", ".join(entry.text for entry in self.entries) or "empty"

    def host_refusal(self, url: Url) -> str | None:
        """Why the URL's host (and port) matches no entry of its kind, or None when one allows it."""
        if url.ip is not None:
            if any(entry.covers(url.ip, url.port) for entry in self.entries):
                return None
            kind = non_public_kind(url.ip)
            why = f": {url.host} is {kind}" if kind else ""
            return f"Host {url.netloc} is not allowed{why} ({SETTING}: {self.describe()})."
        if any(entry.allows_name(url.host, url.port) for entry in self.entries):
            return None
        return f"Host {url.netloc} is not allowed ({SETTING}: {self.describe()})."

    def address_refusal(self, url: Url, ip: IPAddress) -> str | None:
        """Why the request may not connect to ``ip`` for ``url``, or None: a public address of an allowed
        name may be used; a non-public one only when an IP or CIDR entry covers it (with the port)."""
        kind = non_public_kind(ip)
        if kind is None or any(entry.covers(ip, url.port) for entry in self.entries):
            return None
        return f"{url.host} resolves to {ip}, which is {kind} and not in {SETTING}."


# --------------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Checked:
    """A URL that may be called, and the addresses the request may connect to (all of them checked)."""

    url: Url
    addresses: tuple[IPAddress, ...]


def check_syntax_and_host(text: str, allow: AllowList) -> Url:
    """The checks that need no DNS (at validation): the URL's one reading, and its host in the allow-list;
    an IP literal is checked completely here."""
    url = parse_url(text)
    if refusal := allow.host_refusal(url):
        raise UrlRefused(refusal)
    return url


def check(text: str, allow: AllowList, resolver: Resolver) -> Checked:
    """``text`` checked completely: its reading, its host, and every address the host resolves to.

    Raises ``UrlRefused``, or ``UrlUnresolved`` when the name does not resolve. Every address must pass, not
    one: a name with a public and a private address is a rebinding trick, and the connection must be free to
    use any address it was given."""
    url = check_syntax_and_host(text, allow)
    addresses = (url.ip,) if url.ip is not None else _resolve(url, resolver)
    for ip in addresses:
        if refusal := allow.address_refusal(url, ip):
            raise UrlRefused(refusal)
    return Checked(url, addresses)


def _resolve(url: Url, resolver: Resolver) -> tuple[IPAddress, ...]:
    try:
        found = resolver(url.host, url.port)
    except (OSError, UnicodeError) as exc:
        raise UrlUnresolved(f"{url.host} does not resolve: {exc}") from exc
    addresses: list[IPAddress] = []
    for text in found:
        ip = ipaddress.ip_address(text)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UrlUnresolved(f"{url.host} resolves to no address")
    return tuple(addresses)
