"""``DATABASE_URL`` in libpq's multi-host form: a primary and its standbys, for failover (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from workflow_engine import env

FAILOVER = "postgresql://wf:p%40ss@pg-a:5432,pg-b:5433/wf?target_session_attrs=read-write"


def test_a_multi_host_url_becomes_libpq_host_and_port_lists() -> None:
    db = env.database_from_url(FAILOVER)
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "pg-a,pg-b",
        "5432,5433",
        "wf",
        "wf",
        "p@ss",
    )
    assert db["OPTIONS"] == {"target_session_attrs": "read-write"}


def test_a_host_without_a_port_in_the_list_gets_the_default_port_and_ipv6_hosts_lose_their_brackets() -> None:
    db = env.database_from_url("postgresql://wf@[::1]:5432,pg-b/wf?target_session_attrs=primary")
    assert (db["HOST"], db["PORT"]) == ("::1,pg-b", "5432,")
    assert env.database_hosts(db) == "::1:5432, pg-b:5432"


def test_a_single_host_url_is_read_as_before() -> None:
    db = env.database_from_url("postgresql://postgres@127.0.0.1:54320/workflow_engine")
    assert (db["HOST"], db["PORT"], db["OPTIONS"]) == ("127.0.0.1", "54320", {})
    assert env.database_hosts(db) == "127.0.0.1:54320"


def test_the_multi_host_settings_connect_through_psycopg_to_the_first_writable_host() -> None:
    """The lists are what psycopg (libpq) parses: a closed port first, then the real server."""
    real = settings.DATABASES["default"]
    db = env.database_from_url(
        f"postgresql://{real['USER']}@127.0.0.1:1,{real['HOST']}:{real['PORT']}/{real['NAME']}"
        "?target_session_attrs=read-write"
    )
    params = {"host": db["HOST"], "port": db["PORT"], "dbname": db["NAME"], "user": db["USER"]}
    with psycopg.connect(**params, connect_timeout=5, **db["OPTIONS"]) as conn:  # type: ignore[arg-type]
        assert conn.info.port == int(str(real["PORT"]))
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://wf:secret@pg-a,pg-b/wf", "2 hosts need ?target_session_attrs=read-write"),
        (
            "postgresql://pg-a,pg-b/wf?target_session_attrs=any",
            "2 hosts need ?target_session_attrs=read-write",
        ),
        ("postgresql://pg-a,,pg-b/wf?target_session_attrs=read-write", "host '' is empty"),
        ("postgresql://pg-a,/wf?target_session_attrs=read-write", "host '' is empty"),
        (
            "postgresql://pg-a:5432,pg-b:99999/wf?target_session_attrs=read-write",
            "port '99999' of 'pg-b:99999'",
        ),
        ("postgresql://pg-a:x,pg-b/wf?target_session_attrs=read-write", "port 'x' of 'pg-a:x'"),
        (
            "postgresql://pg-a/wf?target_session_attrs=writable",
            "target_session_attrs='writable' is not one of",
        ),
        ("postgresql://pg-a/wf?sslmode=require&sslmode=disable", "sslmode is given twice"),
        ("postgresql://pg-a/wf?sslmode", "the query string is not key=value"),
        ("postgresql://pg-a,pg-b?target_session_attrs=read-write", "expected postgresql://"),
    ],
)
def test_a_malformed_multi_host_url_is_refused_naming_database_url_and_the_problem(
    url: str, problem: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as refused:
        env.database_from_url(url)
    assert problem in str(refused.value)


def test_the_refusal_does_not_print_the_password() -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        env.database_from_url("postgresql://wf:hunter2@pg-a,pg-b/wf")
    assert "hunter2" not in str(refused.value)
    assert "postgresql://wf:***@pg-a,pg-b/wf" in str(refused.value)


def test_settings_accept_a_multi_host_url_and_keep_target_session_attrs_in_the_connection_options() -> None:
    """The whole settings module, as a process starts: nothing of the engine's own OPTIONS is lost either."""
    code = (
        "import django; from django.conf import settings; django.setup(); d = settings.DATABASES['default'];"
        "print(d['HOST'], d['PORT'], d['OPTIONS']['target_session_attrs'], 'connect_timeout' in d['OPTIONS'])"
    )
    environ = {"DATABASE_URL": FAILOVER, "DJANGO_SETTINGS_MODULE": "workflow_engine.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pg-a,pg-b", "5432,5433", "read-write", "True"]
