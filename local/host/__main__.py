"""`python -m local.host [--port 7071] [--app function_app] [--settings FILE]`: the func start stand-in."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from .server import DevHost


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--app", default="function_app", help="module that defines `app`")
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument("--host-json", type=Path, default=Path("host.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s %(message)s", stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    sys.path.insert(0, str(Path.cwd()))
    host = DevHost(args.app, settings_file=args.settings, host_json=args.host_json, host=args.host, port=args.port)
    print(f"dev host: function key for FUNCTION-level routes: {host.function_key}", flush=True)

    async def serve() -> None:
        await host.start_async()
        print(f"dev host listening on {host.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await host.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
