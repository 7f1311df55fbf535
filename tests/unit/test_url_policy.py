"""The URL policy of http.request (apps/workflows/engine/urlpolicy.py): the known SSRF tricks, one per row.

DNS is injected (``RESOLVES``), so that names can point where an attacker would point them without touching
the machine's resolver; tests/integration/test_ssrf.py runs the same policy against real servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import pytest
from urllib3.util import parse_url as urllib3_parse_url

from apps.workflows.engine.nodetypes.http import url_problems
from apps.workflows.engine.urlpolicy import (
    AllowList,
    UrlRefused,
    UrlUnresolved,
    check,
    non_public_kind,
    parse_entry,
)

ALLOW = ["127.0.0.1:18999", "api.example.com", "*.allowed.test"]

# What the injected DNS answers: an attacker controls the records of names under *.allowed.test here.
RESOLVES: dict[str, list[str]] = {
    "api.example.com": ["93.184.216.34"],
    "localhost": ["127.0.0.1", "::1"],
    "public.allowed.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "loopback.allowed.test": ["127.0.0.1"],  # a "localtest.me": a public name for loopback
    "metadata.allowed.test": ["169.254.169.254"],
    "mixed.allowed.test": ["93.184.216.34", "10.0.0.1"],  # one good answer, one bad
    "mapped.allowed.test": ["::ffff:127.0.0.1"],
    "nat64.allowed.test": ["64:ff9b::a9fe:a9fe"],
    "cgnat.allowed.test": ["100.64.0.1"],
    "v6local.allowed.test": ["fe80::1"],
    "zero.allowed.test": ["0.0.0.0"],
}


def resolve(host: str, port: int) -> Sequence[str]:
    if host not in RESOLVES:
        raise OSError(f"[Errno -2] Name or service not known: {host}")
    return RESOLVES[host]


def refusal(url: str, allow: Sequence[str] = ALLOW) -> str | None:
    """Why the policy refuses ``url`` (None when it allows it)."""
    try:
        check(url, AllowList.parse(allow), resolve)
    except UrlRefused as exc:
        return str(exc)
    return None


TRICKS = [
    # parsers that disagree: the issue's own bypasses first
    ("http://127.0.0.1:18998\\@127.0.0.1:18999/x", "backslash"),
    ("http://169.254.169.254\\@api.example.com/", "backslash"),
    ("http://api.example.com\\.evil.test/", "backslash"),
    ("http://127.0.0.1:18999/a\\b", "backslash"),
    ("http://user:pw@api.example.com/", "user information"),
    ("http://api.example.com@127.0.0.1:18998/", "user information"),
    ("http://127.0.0.1:18998#@127.0.0.1:18999/", "Host 127.0.0.1:18998 is not allowed"),
    ("http://127.0.0.1:18998?@127.0.0.1:18999/", "Host 127.0.0.1:18998 is not allowed"),
    ("http://127%2e0%2e0%2e1:18999/", "% in the host"),
    ("http://api%2eexample%2ecom/", "% in the host"),
    ("http://api.example.com /", "whitespace"),
    ("http://api.example.com/\r\nX-Injected: 1", "whitespace"),
    ("http://api.example.com\t/", "whitespace"),
    ("http://\u0430pi.example.com/", "ASCII"),  # a Cyrillic a
    ("http:api.example.com/", "absolute URL"),
    ("http:/api.example.com/", "absolute URL"),
    # schemes
    ("ftp://api.example.com/", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://127.0.0.1:18999/_x", "http:// or https://"),
    ("//api.example.com/", "http:// or https://"),
    # IPv4 in forms other than the dotted quad
    ("http://2130706433:18999/", "not a plain dotted IPv4 address"),
    ("http://0177.0.0.1:18999/", "not a plain dotted IPv4 address"),
    ("http://0x7f.1:18999/", "not a plain dotted IPv4 address"),
    ("http://0x7f000001:18999/", "not a plain dotted IPv4 address"),
    ("http://127.1:18999/", "not a plain dotted IPv4 address"),
    ("http://127.000.000.001:18999/", "not a plain dotted IPv4 address"),
    ("http://1.2.3.4.5/", "not a plain dotted IPv4 address"),
    # IPv6 forms
    ("http://[::1]:18999/", "Host [::1]:18999 is not allowed: ::1 is loopback"),
    ("http://[::ffff:127.0.0.1]:18999/", "IPv4 address written as IPv6"),
    ("http://[0:0:0:0:0:ffff:7f00:1]:18999/", "IPv4 address written as IPv6"),
    ("http://[::127.0.0.1]:18999/", "IPv4 address written as IPv6"),
    ("http://[fe80::1%25eth0]/", "% in the host"),
    ("http://[fe80::1]/", "fe80::1 is link-local"),
    ("http://[::]:18999/", ":: is unspecified"),
    ("http://[::1/", "never closes it"),
    ("http://[::1]x/", "no valid port"),
    ("http://[evil.test]/", "not a valid IPv6 address"),
    # non-public IPv4 literals
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
    ("http://0.0.0.0:18999/", "0.0.0.0 is unspecified"),
    ("http://127.0.0.2:18999/", "127.0.0.2 is loopback"),
    ("http://10.0.0.1/", "10.0.0.1 is private"),
    ("http://172.16.0.1/", "172.16.0.1 is private"),
    ("http://192.168.1.1/", "192.168.1.1 is private"),
    ("http://100.64.0.1/", "shared address space"),
    ("http://224.0.0.1/", "224.0.0.1 is multicast"),
    ("http://240.0.0.1/", "240.0.0.1 is reserved"),
    ("http://8.8.8.8/", "Host 8.8.8.8 is not allowed"),  # public, but an IP needs an IP entry
    ("http://127.0.0.1:18998/", "Host 127.0.0.1:18998 is not allowed: 127.0.0.1 is loopback"),
    # names: the allow-list, trailing dots, and where they resolve
    ("http://localhost:18999/", "Host localhost:18999 is not allowed"),
    ("http://api.example.com./", "ends with a dot"),
    ("http://127.0.0.1.:18999/", "ends with a dot"),
    ("http://api.example.com.evil.test/", "is not allowed"),
    ("http://evilapi.example.com/", "is not allowed"),
    ("http://allowed.test/", "is not allowed"),  # *.allowed.test holds subdomains only
    ("http://xallowed.test/", "is not allowed"),
    ("http://api.example.com:99999/", "no valid port"),
    ("http://api.example.com:/", "no valid port"),
    ("http://api.example.com:8o/", "no valid port"),
    ("http://under_score!.allowed.test/", "not a valid host name"),
    ("http://loopback.allowed.test/", "resolves to 127.0.0.1, which is loopback and not in"),
    ("http://metadata.allowed.test/", "resolves to 169.254.169.254, which is link-local"),
    ("http://mixed.allowed.test/", "resolves to 10.0.0.1, which is private"),
    ("http://mapped.allowed.test/", "which is loopback (the IPv4 address 127.0.0.1 inside it)"),
    ("http://nat64.allowed.test/", "link-local (the IPv4 address 169.254.169.254 inside it)"),
    ("http://cgnat.allowed.test/", "100.64.0.1, which is shared address space"),
    ("http://v6local.allowed.test/", "fe80::1, which is link-local"),
    ("http://zero.allowed.test/", "0.0.0.0, which is unspecified"),
]


@pytest.mark.parametrize(("url", "reason"), TRICKS)
def test_it_refuses_each_known_ssrf_trick_with_the_reason(url: str, reason: str) -> None:
    found = refusal(url)
    assert found is not None and reason in found, found


ALLOWED = [
    ("http://127.0.0.1:18999/x?y=1#frag", "http://127.0.0.1:18999/x?y=1", "127.0.0.1"),
    ("HTTP://API.Example.COM/a/b", "http://api.example.com/a/b", "93.184.216.34"),
    ("https://api.example.com:443", "https://api.example.com:443/", "93.184.216.34"),
    ("https://public.allowed.test/%7Bx%7D", "https://public.allowed.test/%7Bx%7D", "93.184.216.34"),
]


@pytest.mark.parametrize(("url", "rebuilt", "address"), ALLOWED)
def test_it_allows_listed_hosts_and_rebuilds_the_url_from_its_one_reading(
    url: str, rebuilt: str, address: str
) -> None:
    checked = check(url, AllowList.parse(ALLOW), resolve)
    assert checked.url.geturl() == rebuilt and str(checked.addresses[0]) == address


@pytest.mark.parametrize("url", [url for url, _ in TRICKS] + [url for url, _, _ in ALLOWED])
def test_every_url_it_accepts_reads_the_same_to_urlsplit_and_to_urllib3(url: str) -> None:
    """What passes the parse is what ``requests`` (urllib3) will connect to, and what ``urlsplit`` sees."""
    try:
        checked = check(url, AllowList.parse([*ALLOW, "0.0.0.0/0", "::/0"]), resolve)
    except (UrlRefused, UrlUnresolved):
        return
    rebuilt = checked.url.geturl()
    split, parsed = urlsplit(url), urllib3_parse_url(rebuilt)
    assert split.hostname == urlsplit(rebuilt).hostname == checked.url.host
    assert (parsed.host or "").strip("[]") == checked.url.host
    assert (split.port or checked.url.port) == (parsed.port or checked.url.port) == checked.url.port


def test_an_allowed_name_that_resolves_to_loopback_needs_each_of_its_addresses_listed() -> None:
    url = "http://localhost:18999/"
    assert "localhost resolves to 127.0.0.1, which is loopback" in str(refusal(url, ["localhost:18999"]))
    both = ["localhost:18999", "127.0.0.1:18999"]
    assert "localhost resolves to ::1, which is loopback" in str(refusal(url, both))
    assert refusal(url, [*both, "[::1]:18999"]) is None
    assert refusal("http://localhost:18998/", [*both, "[::1]:18999"]) is not None  # entries keep their port


def test_cidr_entries_allow_private_ranges_by_literal_and_by_name_and_can_hold_a_port() -> None:
    RESOLVES["svc.internal.test"] = ["10.1.2.3"]
    try:
        allow = ["*.internal.test", "10.0.0.0/8:8080", "fd00::/8"]
        assert refusal("http://10.9.9.9:8080/", allow) is None
        assert refusal("http://svc.internal.test:8080/", allow) is None
        assert "10.1.2.3, which is private" in str(refusal("http://svc.internal.test:8081/", allow))
        assert refusal("http://[fd00::1]:1/", allow) is None
        assert "Host 11.0.0.1:8080 is not allowed" in str(refusal("http://11.0.0.1:8080/", allow))
    finally:
        del RESOLVES["svc.internal.test"]


def test_a_name_entry_never_allows_an_ip_literal_nor_an_ip_entry_a_name() -> None:
    assert refusal("http://93.184.216.34/", ["api.example.com"]) is not None
    assert refusal("http://api.example.com/", ["93.184.216.34"]) is not None


def test_a_name_that_does_not_resolve_is_a_resolution_failure_not_a_refusal() -> None:
    with pytest.raises(UrlUnresolved, match=r"nowhere\.allowed\.test does not resolve"):
        check("http://nowhere.allowed.test/", AllowList.parse(ALLOW), resolve)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("fe80::abcd", "link-local"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.127.255.255", "shared address space (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "private (the IPv4 address 10.0.0.1 inside it)"),
        ("2002:7f00:1::", "loopback (the IPv4 address 127.0.0.1 inside it)"),
        ("93.184.216.34", None),
        ("::ffff:93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_it_classifies_every_non_public_range(address: str, kind: str | None) -> None:
    import ipaddress

    assert non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("*", "not a host name"),
        ("http://api.example.com", "no valid port"),
        ("api.exa mple.com", "not a host name"),
        ("api.example.com:http", "no valid port"),
        ("10.0.0.1/8", "not a valid IP address or CIDR range"),
        ("127.1", "not a valid IP address or CIDR range"),
        ("[::1", "not a valid IP address or CIDR range"),
        ("api.example.com.", "not a host name"),
    ],
)
def test_it_rejects_allow_list_entries_it_cannot_read(entry: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_entry(entry)


def test_validation_names_the_url_problem_without_resolving_names() -> None:
    allow = AllowList.parse(ALLOW)
    assert "backslash" in url_problems("http://127.0.0.1:18998\\@127.0.0.1:18999/x", allow)[0]
    assert url_problems("http://127.0.0.1:18999/{{ path }}?q={{q}}", allow) == []
    assert url_problems("http://never-resolved.allowed.test/", allow) == []  # DNS waits for the request
    assert "not the host" in url_problems("http://127.0.0.1:{{port}}/", allow)[0]
    assert "not the host" in url_problems("http://{{host}}/", allow)[0]
