"""`dockwarden rollback NAME [--yes] [--json]`: the command-line side of bot/update/rollback.py.

Like `dockwarden update`, it settles interrupted updates first, asks on a terminal unless
`--yes`, records the rollback in the history (by `cli:<user>`) and sends its alert the way
`update` does (the outbox for the daemon, or stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.chat.alert_texts import rollback_alert
from bot.config.settings import Settings
from bot.update.rollback import RollbackOutcome, RollbackResult

EXIT_OK, EXIT_FAILED = 0, 1


def _ask(question: str, name: str) -> bool:
    from bot.entrypoints.report import confirm

    return confirm(question, without_terminal=f"not rolling back {name}: no terminal to "
                   "confirm on; pass --yes to roll back without asking")


def run(settings: Settings, args: argparse.Namespace, actor: str) -> int:
    """Roll one container (or service) back; exit 0 rolled back, 1 otherwise."""
    from bot.entrypoints.bootstrap import (
        build_engine,
        build_registry,
        build_store,
        build_updater,
        engine_insecure_registries,
    )
    from bot.entrypoints.cli_alerts import CommandAlerts
    from bot.update.rollback import Rollbacks

    async def roll_back() -> RollbackResult | None:
        insecure = await asyncio.to_thread(engine_insecure_registries, engine)
        async with build_registry(settings, engine_insecure=insecure) as registry:
            updater = build_updater(settings, engine, registry, store)
            for name in await updater.reconcile():
                print(f"dockwarden: settled an interrupted update of {name}", file=sys.stderr)
            rollbacks = Rollbacks(updater)
            if not args.yes:
                plan = await rollbacks.plan(args.name)
                running = plan.running if plan else None
                back_to = plan.back_to if plan else None
                if plan is not None and not _ask(
                    f"Roll {plan.container} ({plan.image}) back from "
                    f"{running or 'an unknown digest'} to {back_to or 'its previous image'}?",
                    args.name,
                ):
                    return None
            result = await rollbacks.rollback(args.name, actor=actor)
            if result.outcome is not RollbackOutcome.NOTHING:
                await CommandAlerts(settings, store, sys.stderr).send(
                    [rollback_alert(result, actor)]
                )
            return result

    engine = build_engine(settings)
    store = build_store(settings)
    try:
        result = asyncio.run(roll_back())
    finally:
        store.close()
        engine.close()
    if result is None:
        if args.json:
            print(json.dumps({"error": {"kind": "aborted",
                                        "message": "rollback aborted; nothing was changed"}}))
        print("dockwarden: rollback aborted; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(f"{result.container}: {result.outcome.value}: {result.message}")
    return EXIT_OK if result.outcome is RollbackOutcome.ROLLED_BACK else EXIT_FAILED
