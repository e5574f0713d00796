"""Allow ``python -m tuichat``."""

from tuichat.cli import main

raise SystemExit(main())
