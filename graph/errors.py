"""Typed errors of the Graph layer, carrying Graph's status, code and message (never a token or secret)."""

from __future__ import annotations


class GraphCallError(Exception):
    """Graph answered with an error status."""

    def __init__(self, status: int, code: str, message: str, method: str = "", path: str = ""):
        super().__init__(f"{method} {path} → {status} {code}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path

    @property
    def throttled(self) -> bool:
        return self.status == 429

    @property
    def transient(self) -> bool:
        return self.status in (429, 500, 502, 503, 504)


class NotFound(GraphCallError):
    """404: the object does not exist (or is not visible to us)."""


class Forbidden(GraphCallError):
    """403: our identity lacks a permission; an operator must grant it."""


class IncompleteDeletion(GraphCallError):
    """Some methods are still registered only because Graph throttled or failed transiently: try again later.

    Carries what was deleted so far, so a retry can report the whole reset.
    """

    def __init__(self, report, path: str = ""):
        left = ", ".join(m.label for m in report.remaining)
        super().__init__(503, "incompleteDeletion", f"still registered after transient errors: {left}", "DELETE", path)
        self.report = report
