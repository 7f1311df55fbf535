"""The pure engine: the DSL, validation, the execution state, ``apply`` and ``decide``.

Nothing here imports Django, Celery or a clock; time is passed in. Most unit tests point here.
"""
