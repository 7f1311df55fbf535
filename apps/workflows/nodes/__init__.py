"""Node implementations: ``run`` for each node type described in ``apps.workflows.engine.nodetypes``, with the
I/O it takes (files, HTTP, databases, DuckDB, Python callables); ``base`` is the contract, ``registry`` pairs
every description with its implementation, ``sandbox`` reads the settings the nodes are confined by."""
