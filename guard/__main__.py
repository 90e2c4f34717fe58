"""`python -m guard` is the `guard` command."""

from guard.cli import main

raise SystemExit(main())
