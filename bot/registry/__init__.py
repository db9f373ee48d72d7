"""The registry side of DockWarden: OCI / Docker v2 registries spoken to over httpx."""

import sys

# httpx imports its command-line client (click, and pygments where installed) whenever those
# libraries are present; DockWarden never runs it, and every `dockwarden check` paid ~50 ms of
# CPU for it. A None entry makes that one import fail, which httpx expects and handles.
if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
