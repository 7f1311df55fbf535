#!/bin/sh
# The HEALTHCHECK of a workflow-engine container (deploy/docker/Dockerfile): every role in WORKFLOW_ROLES that
# can be asked is asked, so a hung Celery worker makes the container unhealthy even though run_node's metrics
# thread still answers. Exit 0: healthy; 1: not (Docker marks it unhealthy after --retries failures).
set -eu
roles=",${WORKFLOW_ROLES:-coordinator,worker,api-gateway},"
get() {
  python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1"
}
# run_node itself: its merged metrics endpoint
get "http://127.0.0.1:${METRICS_PORT:-9095}/metrics"
case "$roles" in *,api-gateway,*) get "http://127.0.0.1:${HTTP_PORT:-8080}/health/live" ;; esac
# the worker's own event loop answers a Celery ping (manage.py worker_probe, as the Kubernetes liveness probe)
case "$roles" in *,worker,*) python manage.py worker_probe --timeout 5 ;; esac
