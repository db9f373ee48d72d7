"""A loopback TCP proxy that adds latency: `delay` each way and one extra round trip per connect.

Runs its own asyncio loop in a daemon thread, so sync and async callers use it alike:

    with LatencyProxy("127.0.0.1", 5000, delay=0.02) as proxy:
        ... talk to proxy.host ("127.0.0.1:PORT") ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType

_CHUNK = 65536


class LatencyProxy:
    """Forwards 127.0.0.1:port to upstream, each chunk `delay` seconds late in each direction."""

    def __init__(self, upstream_host: str, upstream_port: int, delay: float = 0.02) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        """Where to connect: "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> LatencyProxy:
        """Listen on a free loopback port; returns self."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; idempotent."""
        loop, self._loop = self._loop, None
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> LatencyProxy:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        up_writer: asyncio.StreamWriter | None = None
        cancelled = False
        try:
            # A new connection costs one more round trip (the handshake a real link would need).
            await asyncio.sleep(2 * self.delay)
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                                 self.upstream_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass
        except asyncio.CancelledError:
            # stop() cancels idle keep-alive connections; end quietly (the stream callback
            # would log a cancelled task as an error).
            cancelled = True
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()
                    if not cancelled:
                        with contextlib.suppress(Exception):
                            await w.wait_closed()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk released `delay` after it arrived, order kept."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(release())
        try:
            while True:
                data = await reader.read(_CHUNK)
                queue.put_nowait((time.monotonic() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(BaseException):
                    await sender
