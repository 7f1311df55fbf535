"""workflow-engine: durable, distributed workflows on Django, Celery, Redis and PostgreSQL.

The Celery app lives in ``workflow_engine.celery`` (``celery -A workflow_engine`` finds it); it is not
imported here, so that importing any module of this package (the settings, ``python -m
workflow_engine.tunables``) does not load Celery.
The development servers (embedded PostgreSQL, Redis, MariaDB) are the top-level ``devservices`` package,
outside the runtime: nothing here imports it.
"""
