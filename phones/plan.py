"""What to do for one user, from the normalised source number and the user's current mobile phone method.

| mode          | source number | current mobile        | action                       |
|---------------|---------------|-----------------------|------------------------------|
| any           | invalid       | any                   | invalid (reported, skipped)  |
| any           | valid         | none                  | add                          |
| any           | valid         | the same number       | unchanged                    |
| add           | valid         | a different number    | kept (not ours to change)    |
| authoritative | valid         | a different number    | update                       |
| add           | empty         | any                   | unchanged / no number        |
| authoritative | empty         | a number              | delete                       |
"""

from __future__ import annotations

from dataclasses import dataclass

from .normalize import Normalized, same_number

MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"  # the fixed id of the mobile phone method
WRITES = ("add", "update", "delete")
ACTIONS = ("add", "update", "delete", "unchanged", "kept", "no_number", "invalid", "failed")


@dataclass(frozen=True)
class Step:
    user_id: str
    upn: str
    action: str
    number: str | None = None  # the number written (add/update) or found (unchanged/kept/delete)
    detail: str = ""

    @property
    def writes(self) -> bool:
        return self.action in WRITES

    def request(self) -> tuple[str, str, dict | None]:
        """(method, url, body) of the Graph write."""
        base = f"/users/{self.user_id}/authentication/phoneMethods"
        if self.action == "add":
            return "POST", base, {"phoneNumber": self.number, "phoneType": "mobile"}
        if self.action == "update":
            return "PATCH", f"{base}/{MOBILE_ID}", {"phoneNumber": self.number}
        if self.action == "delete":
            return "DELETE", f"{base}/{MOBILE_ID}", None
        raise ValueError(f"{self.action} writes nothing")


def plan(user_id: str, upn: str, source: Normalized, current_mobile: str | None, mode: str) -> Step:
    if source.reason:
        return Step(user_id, upn, "invalid", None, f"{source.raw!r}: {source.reason}")
    if source.number is None:
        if current_mobile and mode == "authoritative":
            return Step(user_id, upn, "delete", current_mobile, "the source attribute is empty")
        return Step(user_id, upn, "no_number", current_mobile, "the source attribute is empty")
    if current_mobile is None:
        return Step(user_id, upn, "add", source.number)
    if same_number(current_mobile, source.number):
        return Step(user_id, upn, "unchanged", current_mobile)
    if mode == "authoritative":
        return Step(user_id, upn, "update", source.number, f"was {current_mobile}")
    return Step(user_id, upn, "kept", current_mobile, f"source says {source.number}; add-only mode keeps it")
