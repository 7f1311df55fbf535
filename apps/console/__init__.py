"""The web console (issue 13): one HTML shell under ``/ui/`` and plain ES modules that call the REST API
from the browser. The top layer: it imports nothing from the other apps, and holds no logic of the engine."""
