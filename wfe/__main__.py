"""``python -m wfe``: the same as the ``wfe`` console script."""

from __future__ import annotations

from wfe.cli import main

main()
