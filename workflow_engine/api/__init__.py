"""API plumbing every app's ``api/`` uses: the base view, request parsing, paging, errors, roles and rate
limits."""
