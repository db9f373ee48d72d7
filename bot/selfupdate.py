"""`python -m bot.selfupdate NAME DIGEST ACTOR [BASIS]`: the self-update helper's entry point.

Kept at this name because it is a contract between versions: the running bot starts the helper
container from the new image with this command line (bot/update/self_update.py).
"""

import sys

from bot.update.self_update import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
