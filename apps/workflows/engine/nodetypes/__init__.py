"""The node types' descriptions, pure: what validation, the graph and the catalogue know of each node type.

``base`` is the contract, one module per family describes its types, ``catalogue`` holds them all. Their
implementations (``run``) are in ``apps/workflows/nodes/``.
"""
