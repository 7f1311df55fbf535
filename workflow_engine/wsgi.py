from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")
os.environ.setdefault("WORKFLOW_PROCESS_ROLE", "gateway")
application = get_wsgi_application()

# wiring at the top (ARCHITECTURE.md §9): a gateway whose Redis belongs to another cluster, or whose shard
# count is not its cluster's, must not publish wake-ups into it
from apps.cluster.startup import check_gateway  # noqa: E402  (needs the app registry loaded above)

check_gateway()
