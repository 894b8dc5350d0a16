"""The only code that sends messages: the Notifier interface and its transports."""

from .events import Event, EventKind
from .notifier import Notifier, RecordingNotifier

__all__ = ["Event", "EventKind", "Notifier", "RecordingNotifier"]
