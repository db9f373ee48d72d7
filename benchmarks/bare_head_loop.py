"""The floor: a bare asyncio + aiohttp loop sending one manifest HEAD per reference, nothing else.

    python benchmarks/bare_head_loop.py --limit 100 127.0.0.1:5001/bench/app000:v1 ...

Prints one JSON line: {"heads", "ok", "loop_seconds", "limit"}. Anonymous registries only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def manifest_url(reference: str) -> str:
    """`host:port/repo:tag` -> its plain-HTTP manifest URL (loopback registries only)."""
    host, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    return f"http://{host}/v2/{repository}/manifests/{tag}"


async def head_all(urls: list[str], limit: int) -> tuple[int, float]:
    """HEAD every URL concurrently; (answers carrying a digest, seconds)."""
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector, headers={"Accept": ACCEPT}) as session:

        async def head(url: str) -> bool:
            async with session.head(url) as response:
                return response.status == 200 and "Docker-Content-Digest" in response.headers

        started = time.perf_counter()
        answers = await asyncio.gather(*(head(url) for url in urls))
        return sum(answers), time.perf_counter() - started


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100, help="connections at most")
    parser.add_argument("references", nargs="+", help="host:port/repository:tag")
    args = parser.parse_args()
    urls = [manifest_url(ref) for ref in args.references]
    ok, seconds = asyncio.run(head_all(urls, args.limit))
    print(json.dumps({"heads": len(urls), "ok": ok, "loop_seconds": seconds, "limit": args.limit}))
    return 0 if ok == len(urls) else 1


if __name__ == "__main__":
    sys.exit(main())
