from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")
os.environ.setdefault("WORKFLOW_PROCESS_ROLE", "gateway")
application = get_wsgi_application()
