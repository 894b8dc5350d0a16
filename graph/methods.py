"""Authentication methods of a user: list, and delete in a safe order with the default method last.

Docs: https://learn.microsoft.com/graph/api/authentication-list-methods (list) and the per-type delete pages,
e.g. https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete . The password method cannot be
deleted; the default MFA method cannot be deleted while other methods remain (Graph answers 400), so such a
failure is retried after the others are gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .batch import BatchItem, chunks, run_batch
from .raw import GraphCaller, segment

PASSWORD_TYPE = "password"  # noqa: S105 - a method type name, not a secret

# @odata.type suffix → (short type name, collection segment under /users/{id}/authentication/).
METHOD_TYPES: dict[str, tuple[str, str]] = {
    "#microsoft.graph.passwordAuthenticationMethod": ("password", "passwordMethods"),
    "#microsoft.graph.phoneAuthenticationMethod": ("phone", "phoneMethods"),
    "#microsoft.graph.emailAuthenticationMethod": ("email", "emailMethods"),
    "#microsoft.graph.fido2AuthenticationMethod": ("fido2", "fido2Methods"),
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": (
        "microsoftAuthenticator",
        "microsoftAuthenticatorMethods",
    ),
    "#microsoft.graph.softwareOathAuthenticationMethod": ("softwareOath", "softwareOathMethods"),
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": (
        "windowsHelloForBusiness",
        "windowsHelloForBusinessMethods",
    ),
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": ("temporaryAccessPass", "temporaryAccessPassMethods"),
    "#microsoft.graph.platformCredentialAuthenticationMethod": ("platformCredential", "platformCredentialMethods"),
    # beta only: v1.0 does not list hardware OATH tokens, yet they count as methods (and block the default's delete)
    "#microsoft.graph.hardwareOathAuthenticationMethod": ("hardwareOath", "hardwareOathMethods"),
}
ALL_DELETABLE = tuple(name for name, _ in METHOD_TYPES.values() if name != PASSWORD_TYPE)

# Deletion order: second factors first, phones last with alternateMobile before mobile (alternateMobile
# needs mobile), so that the user's default method, usually a phone or Authenticator, tends to come last.
_ORDER = {
    "temporaryAccessPass": 0,
    "email": 1,
    "softwareOath": 2,
    "hardwareOath": 2,
    "platformCredential": 3,
    "windowsHelloForBusiness": 4,
    "fido2": 5,
    "microsoftAuthenticator": 6,
    "phone:office": 7,
    "phone:alternateMobile": 8,
    "phone:mobile": 9,
}


@dataclass(frozen=True)
class Method:
    id: str
    type: str  # short type name: phone, fido2, ... ("unknown:<odata type>" when not recognised)
    collection: str | None
    label: str  # readable: "phone (mobile)", "fido2 YubiKey 5 NFC"
    phone_type: str | None = None
    beta: bool = False

    @property
    def order(self) -> int:
        key = f"phone:{self.phone_type}" if self.type == "phone" else self.type
        return _ORDER.get(key, 5)

    def path(self, user_id: str) -> str:
        return f"/users/{segment(user_id)}/authentication/{self.collection}/{segment(self.id)}"


def parse_method(raw: dict[str, Any], beta: bool = False) -> Method:
    odata_type = raw.get("@odata.type", "")
    short, collection = METHOD_TYPES.get(odata_type, (f"unknown:{odata_type}", None))
    name = raw.get("displayName") or raw.get("phoneType") or raw.get("emailAddress") or ""
    label = f"{short} ({name})" if name else short
    if short == "hardwareOath":
        label = f"hardwareOath ({(raw.get('device') or {}).get('serialNumber', '')})".replace(" ()", "")
    return Method(
        id=raw["id"], type=short, collection=collection, label=label, phone_type=raw.get("phoneType"), beta=beta
    )


@dataclass
class DeletionReport:
    deleted: list[Method] = field(default_factory=list)
    remaining: list[Method] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # method id → Graph's error


class Methods:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def list(self, user_id: str) -> list[Method]:
        """Every method: the v1.0 list plus hardware OATH tokens, which only beta shows."""
        page = await self._caller.json("GET", f"/users/{segment(user_id)}/authentication/methods")
        found = [parse_method(item) for item in (page or {}).get("value", [])]
        hardware = await self._caller.json(
            "GET", f"{self._caller.beta_url}/users/{segment(user_id)}/authentication/hardwareOathMethods"
        )
        found += [parse_method(item, beta=True) for item in (hardware or {}).get("value", [])]
        return found

    async def delete_all(self, user_id: str, types: tuple[str, ...] = ALL_DELETABLE) -> DeletionReport:
        """Delete every method of the given types (never the password), then re-read to verify.

        Methods go in safe order in one batch per 20; those Graph refuses (the default method while others
        remain) are retried once the rest are gone.
        """
        wanted = [m for m in await self.list(user_id) if m.type in types and m.type != PASSWORD_TYPE and m.collection]
        wanted.sort(key=lambda m: m.order)
        report = DeletionReport()
        refused = await self._delete(user_id, wanted, report)
        if refused:
            await self._delete(user_id, refused, report)
        after = await self.list(user_id)
        report.remaining = [m for m in after if m.type != PASSWORD_TYPE]
        gone = {m.id for m in after}
        report.deleted = [m for m in wanted if m.id not in gone]
        for method in report.deleted:
            report.failures.pop(method.id, None)
        return report

    async def _delete(self, user_id: str, methods: list[Method], report: DeletionReport) -> list[Method]:
        refused: list[Method] = []
        for method in [m for m in methods if m.beta]:  # a v1.0 batch cannot carry beta URLs
            response = await self._caller.send("DELETE", f"{self._caller.beta_url}{method.path(user_id)}")
            if response.status_code >= 400 and response.status_code != 404:
                report.failures[method.id] = f"{response.status_code}"
        methods = [m for m in methods if not m.beta]
        by_id = {str(i): m for i, m in enumerate(methods)}
        items = [BatchItem(id=str(i), method="DELETE", url=m.path(user_id)) for i, m in enumerate(methods)]
        for chunk in chunks(items):
            results = await run_batch(self._caller, chunk)
            for item_id, result in results.items():
                method = by_id[item_id]
                if result.ok or result.status == 404:  # 404: already gone (a redelivery)
                    continue
                error = (result.body or {}).get("error", {}) if isinstance(result.body, dict) else {}
                report.failures[method.id] = f"{result.status} {error.get('code', '')}: {error.get('message', '')}"
                if result.status == 400:
                    refused.append(method)
        return refused
