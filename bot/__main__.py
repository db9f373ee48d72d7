"""`python -m bot` runs the `dockwarden` command."""

from bot.cli import main

raise SystemExit(main())
