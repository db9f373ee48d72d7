"""Benchmark: the check pass as the containers grow (200, then 1000) on the same images.

    .venv/bin/python benchmarks/check_scale.py [--images 200] [--containers 200 1000] [--repeat 3]

One Docker engine of its own (vfs, its own socket, data root and bridge: a thousand containers
would weigh on a shared engine's other users), one anonymous docker-registry behind the latency
proxy of check_pass.py holding N distinct busybox images, container i on image i mod N.
The containers run `sleep` without a network: the check watches running containers. At each
count it measures the in-process pass (cold and warm client, requests by kind), the whole
`dockwarden check --json` process and the floor process (bare HEAD loop over the N images), and
prints the figures and how they grow; it asserts nothing about time. Everything it made (its
containers, the engine, the registry, their directories) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from check_pass import (
    HERE,
    KINDS,
    LatencyProxyProcess,
    child_env,
    in_process_passes,
    median,
    push_images,
    run_measured,
    start_containers,
    warm_up,
)

from tests.services import WORK_ROOT
from tests.services.engine import Engine, remove_session_resources
from tests.services.registry import RegistryProcess


class BenchEngine(Engine):
    """A dockerd of this benchmark's own beside whatever engine answers on the default socket."""

    def __init__(self) -> None:
        # Not "engine-<digits>": test sessions sweep those as directories of dead sessions.
        super().__init__(WORK_ROOT / "engine-bench", force_own=True)

    def _daemon_options(self) -> list[str]:
        return ["--storage-driver=vfs", "--containerd-namespace=dockwarden-bench",
                "--containerd-plugins-namespace=dockwarden-bench-plugins"]


def measure_count(args: argparse.Namespace, env: dict[str, str], root: Path, refs: list[str],
                  names: list[str], engine: Engine) -> dict[str, Any]:
    """Figures at one container count, each the median (RSS: the highest) of --repeat runs."""
    runs: dict[str, list[float]] = {}
    stats: Counter[str] = Counter()

    def keep(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    for _ in range(args.repeat):
        floor = run_measured([sys.executable, str(HERE / "bare_head_loop.py"), *refs],
                             env=env, cwd=root)
        if floor.returncode != 0:
            raise RuntimeError(f"bare loop failed: {floor.stdout} {floor.stderr}")
        keep("floor_proc", floor.wall)
        keep("floor_cpu", floor.cpu)
        keep("floor_rss", floor.max_rss_mb)

        check = run_measured([sys.executable, "-m", "bot", "check", "--json"], env=env, cwd=root)
        if check.returncode != 0:
            raise RuntimeError(f"dockwarden check failed ({check.returncode}): {check.stderr}")
        statuses = Counter(r["status"] for r in json.loads(check.stdout)["results"])
        if statuses != Counter({"up_to_date": len(names)}):
            raise RuntimeError(f"dockwarden check found {dict(statuses)}")
        keep("check_proc", check.wall)
        keep("check_cpu", check.cpu)
        keep("check_rss", check.max_rss_mb)

        passes = asyncio.run(in_process_passes(engine.url, names, env["DOCKER_CONFIG"]))
        # What the engine itself takes to answer: a check asks /info three times (insecure
        # registries, swarm, image store) and lists the running containers once.
        for key, call in (("info", engine.client.api.info), ("ps", engine.client.api.containers)):
            started = time.perf_counter()
            call()
            keep(key, time.perf_counter() - started)
        for key in ("listing", "cold", "warm"):
            keep(key, passes[key])
        stats = passes["cold_stats"]
    figures: dict[str, Any] = {
        key: max(values) if key.endswith("_rss") else median(values)
        for key, values in runs.items()
    }
    figures.update(containers=len(names), images=len(refs), cold_stats=stats)
    return figures


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The figures per container count, then how they grow from the first count to the last."""
    print(f"\n{rows[0]['images']} images in one registry, {args.delay * 1000:.0f} ms each way; "
          f"medians of {args.repeat} runs (peak RSS: the highest)\n")
    print(f"{'containers':>10} {'/info s':>7} {'ps s':>6} {'listing s':>9} {'cold s':>7} "
          f"{'warm s':>7} "
          f"{'check s':>8} {'CPU s':>6} {'check MB':>9} {'floor s':>8} {'CPU s':>6} "
          f"{'floor MB':>9} {'ratio':>6}  cold-pass requests")
    for f in rows:
        requests = ", ".join(f"{k} {f['cold_stats'].get(k, 0)}" for k in KINDS
                             if f["cold_stats"].get(k))
        print(f"{f['containers']:>10} {f['info']:>7.3f} {f['ps']:>6.3f} {f['listing']:>9.3f} "
              f"{f['cold']:>7.3f} {f['warm']:>7.3f} "
              f"{f['check_proc']:>8.3f} {f['check_cpu']:>6.3f} {f['check_rss']:>9.1f} "
              f"{f['floor_proc']:>8.3f} {f['floor_cpu']:>6.3f} {f['floor_rss']:>9.1f} "
              f"{f['check_proc'] / f['floor_proc']:>5.2f}x  {requests}")
    first, last = rows[0], rows[-1]
    if first is last:
        return
    added = last["containers"] - first["containers"]
    print(f"\nfrom {first['containers']} to {last['containers']} containers "
          f"({last['containers'] / first['containers']:.0f}x):")
    for key, label in (("info", "engine /info"), ("ps", "engine /containers/json"),
                       ("listing", "engine listing (ours)"),
                       ("cold", "cold pass"), ("warm", "warm pass"),
                       ("check_proc", "dockwarden check process"),
                       ("check_cpu", "its CPU time")):
        print(f"  {label:<26} {last[key] / first[key]:.2f}x "
              f"({(last[key] - first[key]) / added * 1000:+.2f} ms per added container)")
    rss = last["check_rss"] - first["check_rss"]
    print(f"  {'check peak RSS':<26} {last['check_rss'] / first['check_rss']:.2f}x "
          f"({rss:+.1f} MB, {rss * 1024 / added:+.1f} KB per added container)")


def expected_requests(stats: Counter[str], images: int) -> None:
    """The cold pass asks each distinct image once, plus one ping of the one registry."""
    if stats.get("head") != images or stats.get("ping") != 1 or stats.get("get", 0):
        raise RuntimeError(f"cold pass made {dict(stats)}, not {images} HEADs and one ping")


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="distinct images (repositories)")
    parser.add_argument("--containers", type=int, nargs="+", default=[200, 1000],
                        help="container counts, ascending; containers are added between them")
    parser.add_argument("--delay", type=float, default=0.02, help="one-way latency, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if sorted(args.containers) != args.containers:
        parser.error("--containers must ascend")

    root = Path(tempfile.mkdtemp(prefix="dwbench-"))
    (root / "docker-config").mkdir()
    (root / "home").mkdir()
    engine = BenchEngine()
    registry = RegistryProcess("bench", root)
    proxy: LatencyProxyProcess | None = None
    try:
        engine.start()
        client = engine.client
        registry.start()
        proxy = LatencyProxyProcess(registry.host)
        started = time.perf_counter()
        refs = push_images(client, proxy.host, args.images, distinct=True)
        print(f"setup: {args.images} repositories pushed in {time.perf_counter() - started:.1f} s",
              flush=True)
        env = child_env(engine.url, root)
        names: list[str] = []
        rows = []
        for count in args.containers:
            proxy.set_delay(0.0)  # setup is not what is measured
            started = time.perf_counter()
            names += start_containers(client, refs, range(len(names), count))
            print(f"setup: {count} containers running ({time.perf_counter() - started:.1f} s "
                  "to start the new ones)", flush=True)
            proxy.set_delay(args.delay)
            warm_up(refs, env, root)
            rows.append(measure_count(args, env, root, refs, names, engine))
            expected_requests(rows[-1]["cold_stats"], args.images)
        report(rows, args)
    finally:
        if proxy is not None:
            proxy.close()
        if engine.url:
            remove_session_resources(engine.client, dead_only=False, session=os.getpid())
        registry.stop()
        engine.stop()
        shutil.rmtree(engine.root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
