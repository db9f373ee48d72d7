"""Benchmark: one check pass over many containers whose images sit in one registry behind a
latency proxy, beside a bare asyncio HEAD loop over the same manifests (the floor).

    make bench
    .venv/bin/python benchmarks/check_pass.py [--containers 200] [--delay 0.02] [--repeat 5]

It starts what it needs (engine if none answers, an anonymous docker-registry, the test
services' latency proxy in its own process), pushes one small image under N repositories, runs N
sleeping containers (labelled, removed at the end), then measures; it prints figures and asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bot.check.checker import Checker  # noqa: E402
from bot.domain.model import CheckStatus  # noqa: E402
from bot.engines.docker import DockerEngine  # noqa: E402
from bot.registry.client import RegistryClient  # noqa: E402
from bot.registry.credentials import DockerCredentials  # noqa: E402
from tests.services.engine import Engine, remove_session_resources, session_labels  # noqa: E402
from tests.services.images import ImageFactory  # noqa: E402
from tests.services.registry import RegistryProcess  # noqa: E402

HERE = Path(__file__).resolve().parent
KINDS = ("ping", "token", "head", "get", "tags", "blob")


@dataclass
class Proc:
    """What one measured child process did."""

    wall: float
    max_rss_mb: float
    cpu: float  # user + system seconds: less disturbed than wall time on a busy machine
    returncode: int
    stdout: str
    stderr: str


# The child is started through this small launcher: Linux counts the RSS a process had before
# exec in its peak, so a child forked straight from this (large) process would report ours.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(os.environ["DWBENCH_FIGURES"], "w") as f:
    f.write(f"{usage.ru_maxrss} {wall} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv: Sequence[str], *, env: dict[str, str], cwd: Path) -> Proc:
    """Run a child to completion; its wall time and its own peak RSS (wait4 rusage)."""
    out_path, err_path, figures = cwd / "child.out", cwd / "child.err", cwd / "child.figures"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, *argv], stdout=out, stderr=err,
            env={**env, "DWBENCH_FIGURES": str(figures)}, cwd=cwd, check=False,
        )
    max_rss_kb, wall, cpu = figures.read_text().split()
    return Proc(float(wall), int(max_rss_kb) / 1024, float(cpu), done.returncode,
                out_path.read_text(), err_path.read_text())


def child_env(docker_host: str, root: Path) -> dict[str, str]:
    """The environment of the measured processes: this engine, empty Docker config and home,
    none of DockWarden's settings, and bytecode kept between runs (in `root`).

    An installed DockWarden runs from bytecode that pip compiled at install (the image relies on
    it); run from a source tree with PYTHONDONTWRITEBYTECODE, each process would compile every
    module it imports again. `warm_up` fills the cache before anything is measured.
    """
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DOCKWARDEN_", "TELEGRAM_", "DISCORD_", "DOCKER_"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(root / "docker-config"),
               HOME=str(root / "home"), PYTHONPATH=str(REPO_ROOT),
               PYTHONPYCACHEPREFIX=str(root / "pycache"))
    return env


def warm_up(refs: list[str], env: dict[str, str], root: Path) -> None:
    """One unmeasured run of the floor and of the check, which compiles their bytecode."""
    for argv in ([sys.executable, str(HERE / "bare_head_loop.py"), *refs],
                 [sys.executable, "-m", "bot", "check", "--json"]):
        done = run_measured(argv, env=env, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"warm-up of {argv[1]} failed: {done.stderr}")


# tests/services/latency_proxy.py, run in a child process so its work shares neither the GIL nor
# the event loop of the pass measured in this process; its delay is set through stdin so the
# port (part of every image reference) stays the same from setup to measurement.
_PROXY = """
import sys
from tests.services.latency_proxy import LatencyProxy
host, port = sys.argv[1].rsplit(":", 1)
proxy = LatencyProxy(host, int(port), delay=0.0).start()
print(proxy.port, flush=True)
for line in sys.stdin:
    proxy.delay = float(line)
    print("ok", flush=True)
proxy.stop()
"""


class LatencyProxyProcess:
    """A LatencyProxy in front of `upstream` in a child process; `host` is where to connect."""

    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROXY, upstream], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None
        self.host = f"127.0.0.1:{int(self.proc.stdout.readline())}"

    def set_delay(self, seconds: float) -> None:
        """Each way, from now on."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the latency proxy did not take the new delay")

    def close(self) -> None:
        """Stop the proxy process."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def parallel(fn: Callable[[int], Any], n: int, workers: int) -> None:
    """fn(0..n-1) on a thread pool; the first failure is raised."""
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, range(n)):
            pass


def setup(client: Any, proxy_host: str, n: int) -> tuple[list[str], list[str], float, float]:
    """Push one image as N repositories through the proxy and run a container of each."""
    started = time.perf_counter()
    refs = push_images(client, proxy_host, n)
    pushed = time.perf_counter() - started
    started = time.perf_counter()
    names = start_containers(client, refs, range(n))
    return refs, names, pushed, time.perf_counter() - started


def push_images(client: Any, proxy_host: str, n: int, *, distinct: bool = False) -> list[str]:
    """One small image (or N distinct ones) pushed through the proxy as N repositories; their
    references. One image under N names carries N RepoDigests, which the listing reads."""
    refs = [f"{proxy_host}/bench/app{i:03d}:v1" for i in range(n)]
    images = ImageFactory(client)
    image_id = images.build_local(refs[0], 1)

    def push(i: int) -> None:
        repo, _, tag = refs[i].rpartition(":")
        if distinct and i:
            images.build_local(refs[i], 1)  # its own busybox layer (the name is in a file)
        else:
            client.api.tag(image_id, repo, tag)
        for event in client.api.push(repo, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push of {refs[i]} failed: {event['error']}")

    parallel(push, n, 8)
    return refs


def start_containers(client: Any, refs: list[str], numbers: range) -> list[str]:
    """Run container i (labelled, no network) on refs[i % len(refs)] for each i; their names."""
    names = [f"dwbench-{os.getpid()}-{i:03d}" for i in numbers]
    host_config = client.api.create_host_config(network_mode="none")

    def run(k: int) -> None:
        created = client.api.create_container(
            refs[numbers[k] % len(refs)], name=names[k], host_config=host_config,
            labels={**session_labels(), "dockwarden.bench": "1"},
        )
        client.api.start(created["Id"])

    parallel(run, len(names), 4)
    return names


async def in_process_passes(docker_host: str, names: list[str], config_dir: str,
                            per_registry: int | None = None) -> dict[str, Any]:
    """A cold pass (new registry client) then a warm one (same client): seconds and requests."""
    engine = DockerEngine(docker_host)
    try:
        started = time.perf_counter()
        await asyncio.to_thread(engine.list_workloads)
        listing = time.perf_counter() - started
        figures: dict[str, Any] = {"listing": listing}
        credentials = DockerCredentials(config_dir)
        client = (
            RegistryClient(credentials=credentials) if per_registry is None
            else RegistryClient(credentials=credentials, max_per_registry=per_registry)
        )
        async with client as registry:
            checker = Checker(engine, registry, label_enable=False, default_policy="approve")
            for label in ("cold", "warm"):
                before = Counter(registry.stats)
                started = time.perf_counter()
                report = await checker.check(names)
                figures[label] = time.perf_counter() - started
                figures[f"{label}_stats"] = Counter(registry.stats) - before
                bad = [r for r in report.results if r.status is not CheckStatus.UP_TO_DATE]
                if bad:
                    raise RuntimeError(f"{len(bad)} results not up to date, e.g. {bad[0]}")
        return figures
    finally:
        engine.close()


def setup_versions(client: Any, proxy_host: str, k: int) -> list[str]:
    """One repository with tags 1.0.0 and 1.1.0 (OCI-labelled); k containers on 1.0.0 with
    dockwarden.semver=minor. Their names."""
    repo = f"{proxy_host}/bench/versions"
    images = ImageFactory(client)
    for version, tag in enumerate(("1.0.0", "1.1.0"), start=1):
        labels = {"org.opencontainers.image.version": tag,
                  "org.opencontainers.image.revision": f"rev{version}"}
        images.build_local(f"{repo}:{tag}", version, labels=labels)
        for event in client.api.push(repo, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push of {repo}:{tag} failed: {event['error']}")
    names = [f"dwbench-{os.getpid()}-semver-{i}" for i in range(k)]
    host_config = client.api.create_host_config(network_mode="none")
    for name in names:
        created = client.api.create_container(
            f"{repo}:1.0.0", name=name, host_config=host_config,
            labels={**session_labels(), "dockwarden.bench": "1", "dockwarden.semver": "minor"},
        )
        client.api.start(created["Id"])
    return names


async def request_budget(docker_host: str, config_dir: str, plain: list[str],
                         semver: list[str], db_path: Path) -> dict[str, Counter[str]]:
    """Requests by kind: containers without a tag rule alone, then with the semver ones, twice
    (what updates bring kept in a store, as the daemon does)."""
    from bot.config.settings import Settings
    from bot.entrypoints.bootstrap import build_checker
    from bot.store.db import Store

    engine = DockerEngine(docker_host)
    store = Store(db_path)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    figures: dict[str, Counter[str]] = {}
    try:
        async with RegistryClient(credentials=DockerCredentials(config_dir)) as registry:
            checker = build_checker(settings, engine, registry, store)
            for label, names in (("no rule", plain), ("semver 1", plain + semver),
                                 ("semver 2", plain + semver)):
                before = Counter(registry.stats)
                report = await checker.check(names)
                figures[label] = Counter(registry.stats) - before
                found = {r.new_tag for r in report.results if r.container in semver}
                if names is not plain and found != {"1.1.0"}:
                    raise RuntimeError(f"the semver containers were offered {found}")
    finally:
        store.close()
        engine.close()
    return figures


def median(values: list[float]) -> float:
    """The median (the machine is shared: medians of a few runs, not single runs)."""
    return statistics.median(values)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.02, help="one-way latency, seconds")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--floor-limit", type=int, default=100,
                        help="connections the bare loop may open (aiohttp's default: 100)")
    parser.add_argument("--per-registry", type=int, action="append",
                        help="also measure the in-process pass with this many requests at once "
                             "per registry (repeatable; default 64; the client's own default is "
                             "always measured)")
    parser.add_argument("--semver-containers", type=int, default=20,
                        help="containers of one repository with dockwarden.semver=minor, for "
                             "the request budget")
    args = parser.parse_args()
    if args.per_registry is None:
        args.per_registry = [64]

    root = Path(tempfile.mkdtemp(prefix="dwbench-"))
    (root / "docker-config").mkdir()
    (root / "home").mkdir()
    engine = Engine()
    engine.start()
    client = engine.client
    remove_session_resources(client, dead_only=True)
    registry = RegistryProcess("bench", root)
    registry.start()
    proxy = LatencyProxyProcess(registry.host)
    n = args.containers
    try:
        # Set up without latency: it is not what is measured, and it is slow enough on vfs.
        refs, names, push_s, run_s = setup(client, proxy.host, n)
        print(f"setup: {n} repositories pushed in {push_s:.1f} s, "
              f"{n} containers created and started in {run_s:.1f} s", flush=True)
        env = child_env(engine.url, root)
        semver = setup_versions(client, proxy.host, args.semver_containers)
        proxy.set_delay(args.delay)
        warm_up(refs, env, root)
        report(measure(args, env, root, refs, names, engine.url))
        budget = asyncio.run(request_budget(engine.url, str(root / "docker-config"), names,
                                            semver, root / "budget.db"))
        report_budget(budget, len(names), len(semver))
    finally:
        proxy.close()
        remove_session_resources(client, dead_only=False, session=os.getpid())
        registry.stop()
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def measure(args: argparse.Namespace, env: dict[str, str], root: Path, refs: list[str],
            names: list[str], docker_host: str) -> dict[str, Any]:
    """Every figure, each the median of --repeat runs."""
    floor_loop, floor_proc, floor_rss = [], [], []
    check_proc, check_rss = [], []
    cold, warm, listing = [], [], []
    stats: dict[str, Counter[str]] = {}
    variants: dict[int, dict[str, list[float]]] = {}
    for _ in range(args.repeat):
        floor = run_measured([sys.executable, str(HERE / "bare_head_loop.py"), "--limit",
                              str(args.floor_limit), *refs], env=env, cwd=root)
        if floor.returncode != 0:
            raise RuntimeError(f"bare loop failed: {floor.stdout} {floor.stderr}")
        floor_loop.append(json.loads(floor.stdout)["loop_seconds"])
        floor_proc.append(floor.wall)
        floor_rss.append(floor.max_rss_mb)

        check = run_measured([sys.executable, "-m", "bot", "check", "--json", *names],
                             env=env, cwd=root)
        if check.returncode != 0:
            raise RuntimeError(f"dockwarden check failed ({check.returncode}): {check.stderr}")
        results = json.loads(check.stdout)["results"]
        statuses = Counter(r["status"] for r in results)
        if statuses != Counter({"up_to_date": len(names)}):
            raise RuntimeError(f"dockwarden check found {dict(statuses)}")
        check_proc.append(check.wall)
        check_rss.append(check.max_rss_mb)

        passes = asyncio.run(in_process_passes(docker_host, names, env["DOCKER_CONFIG"]))
        cold.append(passes["cold"])
        warm.append(passes["warm"])
        listing.append(passes["listing"])
        stats = {"cold": passes["cold_stats"], "warm": passes["warm_stats"]}
        for limit in args.per_registry:
            other = asyncio.run(
                in_process_passes(docker_host, names, env["DOCKER_CONFIG"], limit)
            )
            variants.setdefault(limit, {"cold": [], "warm": []})
            variants[limit]["cold"].append(other["cold"])
            variants[limit]["warm"].append(other["warm"])
    return {
        "n": len(names), "delay": args.delay, "repeat": args.repeat, "limit": args.floor_limit,
        "floor_loop": median(floor_loop), "floor_proc": median(floor_proc),
        "floor_rss": max(floor_rss), "check_proc": median(check_proc),
        "check_rss": max(check_rss), "cold": median(cold), "warm": median(warm),
        "listing": median(listing), "stats": stats,
        "variants": {k: {p: median(v) for p, v in d.items()} for k, d in variants.items()},
    }


def report(f: dict[str, Any]) -> None:
    """Print the figures as a small table."""
    n = f["n"]
    print(f"\n{n} containers on {n} references, one registry, {f['delay'] * 1000:.0f} ms each "
          f"way + one round trip per new connection; medians of {f['repeat']} runs\n")
    rows = [
        ("floor: bare aiohttp HEAD loop (in loop)", f["floor_loop"], "", ""),
        ("floor: bare HEAD loop, whole process", f["floor_proc"], "", f"{f['floor_rss']:.0f}"),
        ("check pass in-process, cold client", f["cold"],
         f"{f['cold'] / f['floor_loop']:.2f}x floor loop (target <= 1.5x)", ""),
        ("check pass in-process, warm client", f["warm"],
         f"{f['warm'] / f['floor_loop']:.2f}x floor loop", ""),
        ("  engine listing alone", f["listing"], "", ""),
        ("dockwarden check --json, whole process", f["check_proc"],
         f"{f['check_proc'] / f['floor_proc']:.2f}x floor process (target <= 2x)",
         f"{f['check_rss']:.0f}"),
    ]
    for limit, figures in sorted(f["variants"].items()):
        rows.insert(4, (f"  same, cold, {limit} requests per registry", figures["cold"],
                        f"{figures['cold'] / f['floor_loop']:.2f}x floor loop", ""))
        rows.insert(5, (f"  same, warm, {limit} requests per registry", figures["warm"],
                        f"{figures['warm'] / f['floor_loop']:.2f}x floor loop", ""))
    print(f"{'measurement':<42} {'seconds':>8}  {'peak RSS MB':>11}  ratio")
    for label, seconds, ratio, rss in rows:
        print(f"{label:<42} {seconds:>8.3f}  {rss:>11}  {ratio}")
    print(f"\nfloor loop connections at most: {f['limit']}")
    print("\nrequests per image (all passes ask for every image):")
    print(f"{'pass':<6} " + " ".join(f"{k:>7}" for k in KINDS) + "   totals")
    for label, counts in f["stats"].items():
        per = " ".join(f"{counts.get(k, 0) / n:>7.3f}" for k in KINDS)
        totals = ", ".join(f"{k} {counts.get(k, 0)}" for k in KINDS)
        print(f"{label:<6} {per}   {totals}")


def report_budget(budget: dict[str, Counter[str]], plain: int, semver: int) -> None:
    """Print the requests each kind of pass made."""
    kinds = ("head", "tags", "get", "blob")
    print(f"\nrequest budget: {plain} containers without a tag rule, {semver} containers of one "
          "repository with dockwarden.semver=minor (1.0.0 -> 1.1.0 offered):")
    print(f"{'pass':<10} " + " ".join(f"{k:>6}" for k in kinds))
    for label, counts in budget.items():
        print(f"{label:<10} " + " ".join(f"{counts.get(k, 0):>6}" for k in kinds))


if __name__ == "__main__":
    sys.exit(main())
