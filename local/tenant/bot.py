"""(stub) bot routes of the local tenant."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this module's routes."""
