"""``python -m devservices``: see ``devservices.cli``."""

from __future__ import annotations

import sys

from devservices.cli import main

sys.exit(main())
