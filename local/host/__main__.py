"""`python -m local.host [--port 7071] [--app function_app] [--settings local.settings.json]`: the func start stand-in.

The port defaults to local.settings.json Host.LocalHttpPort, else 7071 (as `func start`). Ctrl-C or SIGTERM
stops taking queue messages, lets running invocations finish and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .server import DevHost


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="default: Host.LocalHttpPort, else 7071")
    parser.add_argument("--app", default="function_app", help="module that defines `app` (default function_app)")
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument("--host-json", type=Path, default=Path("host.json"))
    parser.add_argument("--no-queues", action="store_true", help="do not poll queue triggers")
    parser.add_argument("--no-timers", action="store_true", help="do not run timers on their schedule")
    return parser.parse_args(argv)


async def serve(host: DevHost) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await host.start_async()
    print(f"dev host listening on {host.url} (Ctrl-C to stop)", flush=True)
    try:
        await stop.wait()
        print("dev host: stopping (finishing running invocations)", flush=True)
    finally:
        await host.stop_async()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    sys.path.insert(0, str(Path.cwd()))  # the app module lives in the working directory, as for func start
    host = DevHost(
        args.app,
        settings_file=args.settings,
        host_json=args.host_json,
        host=args.host,
        port=args.port,
        run_queues=not args.no_queues,
        run_timers=not args.no_timers,
    )
    print(f"dev host: function key for FUNCTION/ADMIN routes and /admin: {host.function_key}", flush=True)
    asyncio.run(serve(host))


if __name__ == "__main__":
    main()
