"""`python -m bot` runs the `dockwarden` command."""

from bot.entrypoints.cli import main

raise SystemExit(main())
