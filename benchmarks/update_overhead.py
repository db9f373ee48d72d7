"""Time an update adds around docker's own pull, create and start (no healthcheck).

Runs against the Docker engine on DOCKER_HOST (or the default socket) and a real
`docker-registry` started here on a loopback port. Each round pushes two versions of a small
busybox image, keeps only the older one locally, runs a container on it and updates it; the
engine calls are timed as they happen, so

    overhead = wall time of update() - grace period - (pull + create + start)

is what DockWarden adds: registry lookup, journal writes, stop, rename, network connects,
inspects, the gate's last poll and the removal of the old container.

    .venv/bin/python benchmarks/update_overhead.py [--rounds 5] [--grace 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.model import UpdateOutcome  # noqa: E402
from bot.engines.docker import DockerEngine  # noqa: E402
from bot.registry.client import RegistryClient  # noqa: E402
from bot.registry.credentials import DockerCredentials  # noqa: E402
from bot.store.db import Store  # noqa: E402
from bot.update.updater import Updater  # noqa: E402
from tests.services.images import ImageFactory  # noqa: E402
from tests.services.registry import RegistryProcess, RegistryService  # noqa: E402

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"]
DOCKERS_OWN = ("pull", "create", "start")
PORT_CALLS = (
    "inspect_container", "inspect_image", "list_containers", "pull", "tag", "remove_image", "stop",
    "rename", "create", "connect", "start", "restart", "remove_container",
)


def _time_engine_calls(engine: DockerEngine, spent: Counter[str]) -> Callable[[], None]:
    """Wrap the engine port's calls so each method's time adds up in `spent`; the unwrapper."""
    lock = threading.Lock()

    def timed(method: str) -> Callable[..., Awaitable[Any]]:
        call = getattr(engine, method)

        async def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                with lock:
                    spent[method] += time.perf_counter() - start

        return run

    for method in PORT_CALLS:
        setattr(engine, method, timed(method))

    def unwrap() -> None:
        for method in PORT_CALLS:
            delattr(engine, method)

    return unwrap


async def one_round(
    engine: DockerEngine, registry: RegistryClient, store: Store, images: ImageFactory,
    service: RegistryService, grace: float,
) -> tuple[float, Counter[str]]:
    """Update one outdated container; returns its wall time and the engine time per method."""
    client = engine.docker
    repo = f"dwbench/overhead-{uuid.uuid4().hex[:8]}"
    name = f"{service.host}/{repo}"
    images.push(service, repo, "1", version=1, cmd=SLEEPER)
    old_image = client.images.get(f"{name}:1").id
    images.push(service, repo, "1", version=2, cmd=SLEEPER)
    client.images.remove(f"{name}:1")
    client.api.tag(old_image, name, "1")
    container = client.containers.run(f"{name}:1", detach=True, name=repo.replace("/", "-"))
    spent: Counter[str] = Counter()
    updater = Updater(engine, registry, store, health_timeout=60, grace_period=grace)
    unwrap = _time_engine_calls(engine, spent)
    try:
        start = time.perf_counter()
        result = await updater.update(container.name)
        wall = time.perf_counter() - start
        if result.outcome is not UpdateOutcome.UPDATED:
            raise RuntimeError(f"update did not succeed: {result.message}")
    finally:
        unwrap()
        client.api.remove_container(container.name, force=True, v=True)
        for tag in (f"{name}:1", old_image):
            try:
                client.images.remove(tag, force=True)
            except Exception:  # noqa: BLE001 - best-effort cleanup of benchmark images
                pass
    return wall, spent


async def main(rounds: int, grace: float) -> int:
    """Run the rounds and print one line per round plus the medians."""
    engine = DockerEngine(None)
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as tmp:
        proc = RegistryProcess("anonymous", Path(tmp))
        proc.start()
        service = RegistryService("anonymous", proc.host)
        store = Store(Path(tmp) / "bench.db")
        images = ImageFactory(engine.docker)
        overheads, walls = [], []
        try:
            async with RegistryClient(credentials=DockerCredentials(tmp)) as registry:
                print(f"engine {engine.version().get('Version')}, grace period {grace:g} s")
                print(f"{'round':>5} {'wall':>7} {'pull':>7} {'create':>7} {'start':>7} "
                      f"{'stop':>7} {'remove':>7} {'overhead':>9}")
                for number in range(1, rounds + 1):
                    wall, spent = await one_round(engine, registry, store, images, service, grace)
                    own = sum(spent[m] for m in DOCKERS_OWN)
                    overhead = wall - grace - own
                    overheads.append(overhead)
                    walls.append(wall)
                    print(f"{number:>5} {wall:7.3f} {spent['pull']:7.3f} "
                          f"{spent['create']:7.3f} {spent['start']:7.3f} "
                          f"{spent['stop']:7.3f} {spent['remove_container']:7.3f} "
                          f"{overhead:9.3f}")
        finally:
            store.close()
            proc.stop()
            engine.close()
    print(f"median wall {statistics.median(walls):.3f} s; median overhead beyond the grace "
          f"period and docker's pull/create/start: {statistics.median(overheads):.3f} s "
          f"(max {max(overheads):.3f} s; target < 1 s)")
    return 0 if statistics.median(overheads) < 1.0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grace", type=float, default=1.0, help="grace period in seconds")
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.rounds, options.grace)))
