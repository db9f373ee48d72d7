"""`dockwarden rollback NAME [--yes] [--json]`: the command-line side of bot/update/rollback.py.

Like `dockwarden update`, it settles interrupted updates first, asks on a terminal unless
`--yes`, records the rollback in the history (by `cli:<user>`) and sends its alert the way
`update` does (the outbox for the daemon, or stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.chat.alert_texts import rollback_alert
from bot.config.settings import Settings
from bot.update.rollback import RollbackOutcome, RollbackResult

if TYPE_CHECKING:
    from bot.store.db import Store
    from bot.update.hosts import HostUpdaters

EXIT_OK, EXIT_FAILED = 0, 1


def _ask(question: str, name: str) -> bool:
    from bot.entrypoints.report import confirm

    return confirm(question, without_terminal=f"not rolling back {name}: no terminal to "
                   "confirm on; pass --yes to roll back without asking")


def run(settings: Settings, args: argparse.Namespace, actor: str) -> int:
    """Roll one container (or service) back; exit 0 rolled back, 1 otherwise."""
    from bot.entrypoints.cli_alerts import CommandAlerts
    from bot.entrypoints.one_shot import print_aborted, print_outcome, run_with_updater
    from bot.update.hosts import HostRollbacks

    async def roll_back(updater: HostUpdaters, store: Store) -> RollbackResult | None:
        rollbacks = HostRollbacks(updater)
        name = await updater.resolve(args.name)  # NAME or HOST/NAME, as chat takes it
        if not args.yes:
            plan = await rollbacks.plan(name)
            running = plan.running if plan else None
            back_to = plan.back_to if plan else None
            if plan is not None and not _ask(
                f"Roll {plan.container} ({plan.image}) back from "
                f"{running or 'an unknown digest'} to {back_to or 'its previous image'}?",
                args.name,
            ):
                return None
        result = await rollbacks.rollback(name, actor=actor)
        if result.outcome is not RollbackOutcome.NOTHING:
            await CommandAlerts(settings, store, sys.stderr).send(
                [rollback_alert(result, actor)]
            )
        return result

    result = run_with_updater(settings, roll_back)
    if result is None:
        print_aborted("rollback", as_json=args.json)
        return EXIT_FAILED
    print_outcome(result, as_json=args.json)
    return EXIT_OK if result.outcome is RollbackOutcome.ROLLED_BACK else EXIT_FAILED
