"""workflow-engine: durable, distributed workflows on Django, Celery, Redis and PostgreSQL.

The Celery app lives in ``workflow_engine.celery`` (``celery -A workflow_engine`` finds it); it is not
imported here so that tools such as ``python -m workflow_engine.devservices`` start without Django or Celery.
"""
