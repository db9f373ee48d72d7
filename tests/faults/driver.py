"""The daemon as `dockwarden run` builds it, told to /pull one container and to freeze right after
one step of the update, so that a test can SIGKILL the process exactly there.

    python -m tests.faults.driver NAME STEP     (settings from the environment, as the daemon)

Prints `frozen after STEP` when it gets there; exits 3 when the update never reached STEP.
"""

from __future__ import annotations

import asyncio
import sys
import time

from bot.chat.messages import Command, Sender
from bot.config.settings import load_settings
from bot.entrypoints.daemon import Daemon


async def main(name: str, step: str) -> int:
    daemon = Daemon(load_settings(), first_pass_delay=-1, jitter=0)
    core = await daemon.start()

    def freeze(done: str) -> None:
        if done == step:
            print(f"frozen after {step}", flush=True)
            time.sleep(3600)  # the loop and the process stop here until the test kills it

    for updater in core.updates.updater.updaters.values():  # type: ignore[attr-defined]
        updater.replacer.after_step = freeze
    try:
        reply = await core.router.dispatch(
            Command("pull", (name,), Sender("console", 0, "driver", in_alert_place=True))
        )
        print(reply.text, flush=True)
    finally:
        await daemon.stop()
    return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
