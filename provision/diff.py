"""Drift between what provision.yaml wants and what Graph returns: only the properties we write are compared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CREATE, UPDATE, OK, WARN, REVOKE = "create", "update", "ok", "warn", "revoke"


@dataclass
class Change:
    """One line of a plan: what kind of object, which one, what would happen, and why."""

    kind: str
    name: str
    action: str
    details: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.action in (CREATE, UPDATE, REVOKE)


def _norm(value: Any) -> Any:
    # Graph may echo "@odata.type" with or without '#', and lists of names in any order.
    if isinstance(value, str) and value.startswith("#microsoft.graph."):
        return value[1:]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(_norm(v) for v in value)
    return value


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Where `have` differs from `want`; keys `want` does not name are ignored (Graph adds its own)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [f"{path or '.'}: {have!r} → {want!r}"]
        out: list[str] = []
        for key, value in want.items():
            out += differences(value, have.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(want, list) and want and isinstance(want[0], dict):
        if not isinstance(have, list) or len(have) != len(want):
            count = len(have) if isinstance(have, list) else 0
            return [f"{path}: {count} entries → {len(want)}"]
        out = []
        for index, (w, h) in enumerate(zip(want, have, strict=True)):
            out += differences(w, h, f"{path}[{index}]")
        return out
    if want in ([], None) and have in ([], None):
        return []  # Graph leaves empty collections out or sends null
    if _norm(want) != _norm(have):
        return [f"{path}: {have!r} → {want!r}"]
    return []
