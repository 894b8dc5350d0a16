"""Starts what a bench needs: Azurite on free ports (from node_modules) for the duration of a `with`."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

from tests.conftest import Azurite, _free_port, _wait_port, azurite_binary


@contextlib.contextmanager
def azurite() -> Iterator[Azurite]:
    ports = [_free_port() for _ in range(3)]
    process = subprocess.Popen(
        [azurite_binary(), "--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
         "--blobPort", str(ports[0]), "--queuePort", str(ports[1]), "--tablePort", str(ports[2])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for port in ports:
            _wait_port(port)
        yield Azurite(*ports)
    finally:
        process.terminate()
