"""Benchmark: two Docker hosts checked in one pass, their containers on the same images.

    .venv/bin/python benchmarks/two_hosts.py [--images 200] [--delay 0.02] [--repeat 3]

Two dockerds of its own (hosts `a` and `b`: each its own socket, data root, exec root, pidfile,
bridge on a 198.18.x.0/24 subnet and containerd namespace), one anonymous docker-registry behind
the latency proxy of check_pass.py holding N distinct busybox images, pushed from `a` and pulled
by `b`, and N sleeping containers on each engine, container i on image i. It measures the
in-process cold pass over both hosts (a new registry client) with its requests by kind, which
should be one HEAD per distinct image and one ping; the floor (the bare HEAD loop over the N
images through the same proxy) and the ratio of the two; and the whole `dockwarden check --json`
process with DOCKWARDEN_HOSTS naming both engines beside the floor process (wall, CPU, peak
RSS); the cold pass and the process over host `a` alone show what the second host adds. It
prints the figures and asserts nothing about time; it exits 1 when the cold pass made other
requests than those. Everything it made (containers,
engines, registry, their directories) is removed at the end; the services log to files under
its temporary directory and the engines' roots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from bare_head_loop import head_all, manifest_url
from check_pass import (
    _PROXY,
    HERE,
    KINDS,
    REPO_ROOT,
    LatencyProxyProcess,
    child_env,
    median,
    parallel,
    push_images,
    run_measured,
    start_containers,
    warm_up,
)

from bot.check.checker import Checker
from bot.domain.model import CheckReport, CheckStatus, Policy
from bot.engines.docker import DockerEngine
from bot.registry.client import RegistryClient
from bot.registry.credentials import DockerCredentials
from tests.services import WORK_ROOT
from tests.services.engine import Engine, remove_session_resources
from tests.services.registry import RegistryProcess

T = TypeVar("T")
HOSTS = ("a", "b")
TARGET_COLD = 1.5  # the cold pass within 1.5x the bare HEAD loop


class HostEngine(Engine):
    """One of the benchmark's two dockerds, beside each other and the shared engine."""

    def __init__(self, host: str) -> None:
        # Not "engine-<digits>": test sessions sweep those as directories of dead sessions.
        super().__init__(WORK_ROOT / f"engine-twohosts-{host}", force_own=True)
        self.host = host

    def start(self) -> str:
        """Always a dockerd of our own, off docker0 and the iptables chains (its own bridge)."""
        self._start_own(another_engine=True)
        return self.url

    def _daemon_options(self) -> list[str]:
        namespace = f"dockwarden-twohosts-{self.host}"
        return ["--storage-driver=vfs", f"--containerd-namespace={namespace}",
                f"--containerd-plugins-namespace={namespace}-plugins"]


class LoggedProxy(LatencyProxyProcess):
    """check_pass's latency proxy process, its stderr in a log file instead of the terminal."""

    def __init__(self, upstream: str, logfile: Path) -> None:
        self.log = open(logfile, "ab")  # noqa: SIM115 - closed with the proxy
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROXY, upstream], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None
        self.host = f"127.0.0.1:{int(self.proc.stdout.readline())}"

    def close(self) -> None:
        """Stop the proxy process and close its log."""
        super().close()
        self.log.close()


def pull_images(client: Any, refs: list[str]) -> None:
    """Pull every reference into an engine (RepoDigests as a pull leaves them)."""

    def pull(i: int) -> None:
        repo, _, tag = refs[i].rpartition(":")
        for event in client.api.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"pull of {refs[i]} failed: {event['error']}")

    parallel(pull, len(refs), 8)


def verify(report: CheckReport, names: list[str], hosts: tuple[str, ...]) -> None:
    """Every container of every host checked, keyed HOST/NAME, up to date."""
    several = len(hosts) > 1
    expected = {f"{host}/{name}" if several else name for host in hosts for name in names}
    keys = {r.container for r in report.results}
    if keys != expected or len(report.results) != len(expected):
        raise RuntimeError(f"the pass gave {len(report.results)} results, {len(keys & expected)} "
                           f"of the {len(expected)} expected keys")
    wrong_host = [r for r in report.results
                  if r.host not in hosts or (several and r.container.split("/", 1)[0] != r.host)]
    bad = [r for r in report.results if r.status is not CheckStatus.UP_TO_DATE]
    if wrong_host or bad:
        raise RuntimeError(f"{len(wrong_host)} results on the wrong host, {len(bad)} not up to "
                           f"date, e.g. {(wrong_host + bad)[0]}")


async def timed(figures: dict[str, Any], label: str, work: Awaitable[T]) -> T:
    """`work` awaited; its wall time kept as `label`, this process's CPU time as `label_cpu`
    (the registry, the proxy and the engines run in other processes)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    figures[label] = time.perf_counter() - wall
    figures[f"{label}_cpu"] = time.process_time() - cpu
    return result


async def in_process_passes(urls: dict[str, str], names: list[str],
                            config_dir: str) -> dict[str, Any]:
    """Both hosts listed, then a cold pass (new registry client) and a warm one over both, then
    a cold pass over host a alone: seconds and requests by kind."""
    engines = {host: DockerEngine(url) for host, url in urls.items()}
    figures: dict[str, Any] = {}
    try:
        credentials = DockerCredentials(config_dir)
        async with RegistryClient(credentials=credentials) as registry:
            checker = Checker(engines, registry, label_enable=False,
                              default_policy=Policy.APPROVE)
            await timed(figures, "listing", checker.workloads())
            for label in ("cold", "warm"):
                before = Counter(registry.stats)
                report = await timed(figures, label, checker.check())
                figures[f"{label}_stats"] = Counter(registry.stats) - before
                verify(report, names, HOSTS)
        async with RegistryClient(credentials=credentials) as registry:
            one = Checker({"a": engines["a"]}, registry, label_enable=False,
                          default_policy=Policy.APPROVE)
            report = await timed(figures, "cold_one", one.check())
            figures["cold_one_stats"] = Counter(registry.stats)
            verify(report, names, ("a",))
        return figures
    finally:
        for engine in engines.values():
            engine.close()


def check_process(env: dict[str, str], root: Path, names: list[str],
                  urls: dict[str, str]) -> Any:
    """`dockwarden check --json` with DOCKWARDEN_HOSTS naming the hosts of `urls`, its output
    checked (every container of each, up to date); the measured run."""
    hosts_env = {**env, "DOCKWARDEN_HOSTS": hosts_setting(urls)}
    check = run_measured([sys.executable, "-m", "bot", "check", "--json"], env=hosts_env,
                         cwd=root)
    if check.returncode != 0:
        raise RuntimeError(f"dockwarden check failed ({check.returncode}): {check.stderr}")
    document = json.loads(check.stdout)
    results = document["results"]
    by_host = Counter(r.get("host") for r in results)
    statuses = Counter(r["status"] for r in results)
    if (by_host != Counter({host: len(names) for host in urls})
            or statuses != Counter({"up_to_date": len(results)})
            or document.get("unreachable_hosts")):
        raise RuntimeError(f"dockwarden check found {dict(statuses)} on {dict(by_host)}, "
                           f"unreachable: {document.get('unreachable_hosts')}")
    return check


# The registry's access log: `... "HEAD /v2/bench/app000/manifests/v1 HTTP/1.1" 200 ...`.
_ACCESS = re.compile(r'"([A-Z]+) (/v2/\S*) HTTP/')


def logged_requests(access_log: Path, offset: int) -> Counter[str]:
    """Requests by kind (as the registry client counts them) logged after byte `offset`."""
    time.sleep(0.2)  # the registry writes its line after the answer
    with open(access_log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    counts: Counter[str] = Counter()
    for method, path in _ACCESS.findall(text):
        if path == "/v2/":
            counts["ping"] += 1
        elif "/manifests/" in path:
            counts["head" if method == "HEAD" else "get"] += 1
        elif path.endswith("/tags/list") or "/tags/list?" in path:
            counts["tags"] += 1
        elif "/blobs/" in path:
            counts["blob"] += 1
        else:
            counts["other"] += 1
    return counts


def hosts_setting(urls: dict[str, str]) -> str:
    """DOCKWARDEN_HOSTS naming each host of `urls`: `a=unix:///...,b=unix:///...`."""
    return ",".join(f"{host}={url}" for host, url in urls.items())


def measure(args: argparse.Namespace, env: dict[str, str], root: Path, refs: list[str],
            names: list[str], urls: dict[str, str], access_log: Path) -> dict[str, Any]:
    """Every figure, the median (peak RSS: the highest) of --repeat runs."""
    runs: dict[str, list[float]] = {}
    stats: dict[str, Counter[str]] = {}
    process_requests: Counter[str] = Counter()
    # Unmeasured: what a process does once whatever it checks (imports, first connections).
    asyncio.run(in_process_passes(urls, names, env["DOCKER_CONFIG"]))
    load_before = os.getloadavg()[0]

    def keep(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    def keep_process(prefix: str, measured: Any) -> None:
        """A measured child's wall time, CPU time and peak RSS."""
        for suffix, value in (("proc", measured.wall), ("cpu", measured.cpu),
                              ("rss", measured.max_rss_mb)):
            keep(f"{prefix}_{suffix}", value)

    for _ in range(args.repeat):
        floor = run_measured([sys.executable, str(HERE / "bare_head_loop.py"), *refs],
                             env=env, cwd=root)
        if floor.returncode != 0:
            raise RuntimeError(f"bare loop failed: {floor.stdout} {floor.stderr}")
        keep("floor_loop", json.loads(floor.stdout)["loop_seconds"])
        keep_process("floor", floor)
        offset = access_log.stat().st_size
        keep_process("check", check_process(env, root, names, urls))
        process_requests = logged_requests(access_log, offset)
        keep_process("one", check_process(env, root, names, {"a": urls["a"]}))

        passes = asyncio.run(in_process_passes(urls, names, env["DOCKER_CONFIG"]))
        # The floor's loop here too: its CPU time beside the passes', which a busy machine
        # disturbs less than their wall times.
        floor_here: dict[str, Any] = {}
        ok, _ = asyncio.run(timed(floor_here, "loop",
                                  head_all([manifest_url(r) for r in refs], 100)))
        if ok != len(refs):
            raise RuntimeError(f"the bare loop here had {ok} of {len(refs)} digests")
        keep("floor_here", floor_here["loop"])
        keep("floor_here_cpu", floor_here["loop_cpu"])
        for key in ("listing", "cold", "warm", "cold_one"):
            keep(key, passes[key])
            keep(f"{key}_cpu", passes[f"{key}_cpu"])
        stats = {key: passes[f"{key}_stats"] for key in ("cold", "warm", "cold_one")}
    figures: dict[str, Any] = {
        key: max(values) if key.endswith("_rss") else median(values)
        for key, values in runs.items()
    }
    figures["stats"] = {**stats, "process": process_requests}
    figures.update(load_before=load_before, load_after=os.getloadavg()[0])
    return figures


def requests_text(counts: Counter[str]) -> str:
    """Requests by kind, the kinds of check_pass first, then any other counted (connections)."""
    kinds = [k for k in KINDS if counts.get(k)] + sorted(set(counts) - set(KINDS))
    return ", ".join(f"{k} {counts[k]}" for k in kinds) or "none"


def report(f: dict[str, Any], args: argparse.Namespace, containers: int) -> bool:
    """Print the figures; whether the cold pass made the requests it should have."""
    n = args.images
    print(f"\n{len(HOSTS)} hosts x {containers} containers on {n} distinct images, one registry, "
          f"{args.delay * 1000:.0f} ms each way; medians of {args.repeat} runs "
          "(peak RSS: the highest)")
    print(f"load average of the machine: {f['load_before']:.1f} before measuring, "
          f"{f['load_after']:.1f} after, on {os.cpu_count()} CPUs\n")
    cold_ratio = f["cold"] / f["floor_loop"]
    rows = [
        ("floor: bare HEAD loop over the images, in the loop", f["floor_loop"], "", "", ""),
        ("  the same loop in this process", f["floor_here"], f"{f['floor_here_cpu']:.3f}", "",
         ""),
        ("listing of both hosts", f["listing"], f"{f['listing_cpu']:.3f}", "", ""),
        ("cold pass, both hosts (new registry client)", f["cold"], f"{f['cold_cpu']:.3f}",
         "", f"{cold_ratio:.2f}x floor loop (target <= {TARGET_COLD}x: "
         f"{'within' if cold_ratio <= TARGET_COLD else 'over'}; "
         f"CPU {f['cold_cpu'] / f['floor_here_cpu']:.2f}x)"),
        ("warm pass, both hosts", f["warm"], f"{f['warm_cpu']:.3f}", "",
         f"{f['warm'] / f['floor_loop']:.2f}x"),
        ("cold pass, host a alone", f["cold_one"], f"{f['cold_one_cpu']:.3f}", "",
         f"{f['cold_one'] / f['floor_loop']:.2f}x (CPU "
         f"{f['cold_one_cpu'] / f['floor_here_cpu']:.2f}x)"),
        ("floor: bare HEAD loop, whole process", f["floor_proc"], f"{f['floor_cpu']:.3f}",
         f"{f['floor_rss']:.1f}", ""),
        ("dockwarden check --json, both hosts", f["check_proc"], f"{f['check_cpu']:.3f}",
         f"{f['check_rss']:.1f}", f"{f['check_proc'] / f['floor_proc']:.2f}x floor process "
         f"(CPU {f['check_cpu'] / f['floor_cpu']:.2f}x)"),
        ("dockwarden check --json, host a alone", f["one_proc"], f"{f['one_cpu']:.3f}",
         f"{f['one_rss']:.1f}", f"{f['one_proc'] / f['floor_proc']:.2f}x floor process "
         f"(CPU {f['one_cpu'] / f['floor_cpu']:.2f}x)"),
    ]
    print(f"{'measurement':<52} {'wall s':>7} {'CPU s':>6} {'peak MB':>8}  ratio")
    for label, seconds, cpu, rss, ratio in rows:
        print(f"{label:<52} {seconds:>7.3f} {cpu:>6} {rss:>8}  {ratio}")

    expected = n + 1  # one HEAD per distinct image, one ping of the one registry
    print(f"\nregistry requests expected per pass over both hosts: {expected} "
          f"({n} distinct images + 1 ping)")
    cold: Counter[str] = f["stats"]["cold"]
    made = sum(cold.get(k, 0) for k in KINDS)
    match = cold.get("head") == n and cold.get("ping") == 1 and made == expected
    print(f"cold pass over both hosts: {made} ({requests_text(cold)}): "
          f"{'they match' if match else 'they do NOT match'}")
    logged: Counter[str] = f["stats"]["process"]
    logged_match = logged == Counter({"head": n, "ping": 1})
    print(f"dockwarden check --json over both hosts, in the registry's access log: "
          f"{sum(logged.values())} ({requests_text(logged)}): "
          f"{'they match' if logged_match else 'they do NOT match'}")
    print(f"warm pass over both hosts: {requests_text(f['stats']['warm'])}")
    print(f"cold pass over host a alone: {requests_text(f['stats']['cold_one'])}")
    return match and logged_match


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200,
                        help="distinct images, and containers per host")
    parser.add_argument("--delay", type=float, default=0.02, help="one-way latency, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dwbench-two-"))
    (root / "docker-config").mkdir()
    (root / "home").mkdir()
    engines = {host: HostEngine(host) for host in HOSTS}
    registry = RegistryProcess("bench", root)
    proxy: LoggedProxy | None = None
    try:
        started = time.perf_counter()
        for engine in engines.values():
            engine.start()
        print(f"setup: engines {', '.join(e.url for e in engines.values())} up in "
              f"{time.perf_counter() - started:.1f} s (logs: their dockerd.log)", flush=True)
        registry.start()
        proxy = LoggedProxy(registry.host, root / "latency-proxy.log")
        started = time.perf_counter()
        refs = push_images(engines["a"].client, proxy.host, args.images, distinct=True)
        pull_images(engines["b"].client, refs)
        print(f"setup: {args.images} images pushed from a and pulled by b in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        names: list[str] = []
        for engine in engines.values():
            names = start_containers(engine.client, refs, range(args.images))
        print(f"setup: {args.images} containers running on each host in "
              f"{time.perf_counter() - started:.1f} s", flush=True)

        urls = {host: engine.url for host, engine in engines.items()}
        env = child_env(urls["a"], root)
        # The hosts come from DOCKWARDEN_HOSTS alone: no DOCKER_HOST to fall back on.
        del env["DOCKER_HOST"]
        proxy.set_delay(args.delay)
        warm_up(refs, {**env, "DOCKWARDEN_HOSTS": hosts_setting(urls)}, root)
        figures = measure(args, env, root, refs, names, urls, registry.root / "registry.log")
        match = report(figures, args, len(names))
    finally:
        if proxy is not None:
            proxy.close()
        for engine in engines.values():
            if engine.url:
                remove_session_resources(engine.client, dead_only=False, session=os.getpid())
        registry.stop()
        for engine in engines.values():
            engine.stop()
            shutil.rmtree(engine.root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
