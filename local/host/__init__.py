"""The dev host: runs function_app like `func start` (HTTP, queue and timer triggers) on this machine."""

from .server import DevHost

__all__ = ["DevHost"]
