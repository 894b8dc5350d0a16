"""Runs an async server on its own thread and event loop, so blocking clients and tests can call it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ThreadedServer:
    """Base for the local tenant and the dev host: subclasses define start_async() and stop_async().

    `with Server(...) as server:` starts it on a daemon thread and stops it at the end; `server.call(coro)` runs a
    coroutine on the server's loop from the calling thread.
    """

    thread_name = "local-server"
    call_timeout_s = 60.0

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    async def start_async(self) -> None:
        raise NotImplementedError

    async def stop_async(self) -> None:
        raise NotImplementedError

    def _thread_main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.start_async())
        except BaseException as exc:  # surfaced to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.stop_async())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._thread_main, name=self.thread_name, daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"{self.thread_name} failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(15)
            self._thread = None

    def call(self, coro):
        """Run a coroutine on the server's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.call_timeout_s)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
