"""``python -m skinscan``."""

from skinscan.cli import main

raise SystemExit(main())
