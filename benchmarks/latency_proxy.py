"""A TCP proxy that adds network latency: `delay` seconds each way, plus one round trip per new
connection (what the TCP handshake costs on a real network).

Run it as its own process so its work does not share the measured program's event loop:

    python benchmarks/latency_proxy.py --listen 127.0.0.1:5001 --upstream 127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, not_before: float
) -> None:
    """Copy reader to writer, delivering each chunk `delay` after it arrived (order kept)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((max(loop.time(), not_before) + delay, data))
    except OSError:
        pass
    queue.put_nowait((loop.time() + delay, None))
    with contextlib.suppress(OSError):
        await sender


async def _handle(
    upstream: tuple[str, int],
    delay: float,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
) -> None:
    loop = asyncio.get_running_loop()
    # The connection is usable one round trip after it was opened.
    ready = loop.time() + 2 * delay
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pump(client_reader, up_writer, delay, ready),
            _pump(up_reader, client_writer, delay, 0.0),
        )
    except asyncio.CancelledError:
        pass  # the proxy is stopping: connections just end
    finally:
        for w in (up_writer, client_writer):
            w.close()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def serve(listen: str, upstream: str, delay: float) -> None:
    """Serve until SIGTERM or SIGINT."""
    host, port = _hostport(listen)
    target = _hostport(upstream)
    server = await asyncio.start_server(
        lambda r, w: _handle(target, delay, r, w), host, port, backlog=1024
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"latency proxy {listen} -> {upstream}, {delay * 1000:.0f} ms each way", flush=True)
    async with server:
        await stop.wait()
    # Open connections just end with the process; nothing here needs an orderly goodbye.
    os._exit(0)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="host:port to listen on")
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--delay", type=float, default=0.02, help="one-way delay in seconds")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.upstream, args.delay))


if __name__ == "__main__":
    main()
