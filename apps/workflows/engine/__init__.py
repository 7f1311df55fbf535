"""The pure engine: the DSL, validation, the execution state, ``apply`` and ``decide``, and the node types'
descriptions (``nodetypes``) with the languages and policies their checks use (expressions, URLs, paths, SQL
text), all under the ``Sandbox`` the caller gives.

Nothing here imports Django, Celery, a driver or a clock; time and configuration are passed in, and the
package loads in a bare Python (``tests/unit/test_pure_engine.py``). Most unit tests point here.
"""
