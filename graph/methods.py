"""Authentication methods of a user: list, and delete in a safe order with the default method last.

Docs: https://learn.microsoft.com/graph/api/authentication-list-methods (list) and the per-type delete pages,
e.g. https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete . The password method cannot be
deleted; the default MFA method cannot be deleted while other methods remain (Graph answers 400), so such a
failure is retried after the others are gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .batch import MAX_BATCH, BatchItem, batch_error, chunks, run_batch
from .errors import IncompleteDeletion
from .raw import GraphCaller, segment

TRANSIENT = {429, 500, 502, 503, 504}
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
    transient: set[str] = field(default_factory=set)  # method ids refused only by throttling or an outage
    revoked: bool = False


@dataclass
class Snapshot:
    """A user's methods and which one is the default (beta signInPreferences), read in one parallel round."""

    methods: list[Method]
    default_id: str | None


# signInPreferences.userPreferredMethodForSecondaryAuthentication → how to recognise that method.
_PREFERRED = {
    "push": ("microsoftAuthenticator", None),
    "sms": ("phone", "mobile"),
    "voiceMobile": ("phone", "mobile"),
    "voiceAlternateMobile": ("phone", "alternateMobile"),
    "voiceOffice": ("phone", "office"),
    "oath": ("softwareOath", None),
}


class Methods:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def list(self, user_id: str) -> list[Method]:
        """Every method: the v1.0 list plus hardware OATH tokens, which only beta shows."""
        v1, hardware = await asyncio.gather(
            self._caller.json("GET", f"/users/{segment(user_id)}/authentication/methods"),
            self._caller.json(
                "GET", f"{self._caller.beta_url}/users/{segment(user_id)}/authentication/hardwareOathMethods"
            ),
        )
        found = [parse_method(item) for item in (v1 or {}).get("value", [])]
        return found + [parse_method(item, beta=True) for item in (hardware or {}).get("value", [])]

    async def snapshot(self, user_id: str) -> Snapshot:
        methods, preferences = await asyncio.gather(
            self.list(user_id),
            self._caller.json(
                "GET", f"{self._caller.beta_url}/users/{segment(user_id)}/authentication/signInPreferences"
            ),
        )
        wanted = _PREFERRED.get((preferences or {}).get("userPreferredMethodForSecondaryAuthentication") or "")
        default = next(
            (m for m in methods if wanted and m.type == wanted[0] and (wanted[1] is None or m.phone_type == wanted[1])),
            None,
        )
        return Snapshot(methods, default.id if default else None)

    async def delete_all(
        self,
        user_id: str,
        types: tuple[str, ...] = ALL_DELETABLE,
        *,
        snapshot: Snapshot | None = None,
        revoke_sessions: bool = False,
    ) -> DeletionReport:
        """Delete every method of the given types (never the password) and verify, in as few round trips as
        Graph allows: one sequential $batch revokes sessions, deletes the methods with the default last and
        re-reads them, while beta-only methods are deleted beside it. Anything Graph still refuses is retried
        once the rest are gone; methods left only by throttling raise IncompleteDeletion (retry later).
        """
        snapshot = snapshot or await self.snapshot(user_id)
        wanted = [m for m in snapshot.methods if m.type in types and m.type != PASSWORD_TYPE and m.collection]
        wanted.sort(key=lambda m: m.order)
        report = DeletionReport()
        plain = [m for m in wanted if not m.beta]
        # A v1.0 batch cannot carry beta URLs: beta-only methods (hardware OATH) are deleted alongside it, in the
        # same round trip. Graph refuses the default method while they remain; the batch deletes it last, and
        # should it still lose that race, the refusal is retried below like any other.
        after, _ = await asyncio.gather(
            self._batch(user_id, plain, snapshot.default_id, report, revoke_sessions),
            asyncio.gather(*(self._delete_beta(user_id, m, report) for m in wanted if m.beta)),
        )
        if after is None:  # something was refused, so the re-read did not run: retry the refused, then read
            refused = [m for m in plain if m.id in report.failures]
            if refused:
                await self._batch(user_id, refused, snapshot.default_id, report, False)
            after = await self.list(user_id)
        after += [m for m in wanted if m.beta and m.id in report.failures]
        report.remaining = [m for m in after if m.type != PASSWORD_TYPE]
        gone = {m.id for m in after}
        report.deleted = [m for m in wanted if m.id not in gone]
        for method in report.deleted:
            report.failures.pop(method.id, None)
            report.transient.discard(method.id)
        if report.transient & {m.id for m in report.remaining}:
            # Throttling or an outage, not a refusal: the caller retries (a redelivery) instead of reporting
            # these methods as kept.
            raise IncompleteDeletion(report, f"/users/{segment(user_id)}/authentication/methods")
        return report

    async def _delete_beta(self, user_id: str, method: Method, report: DeletionReport) -> None:
        response = await self._caller.send("DELETE", f"{self._caller.beta_url}{method.path(user_id)}")
        if response.status_code >= 400 and response.status_code != 404:
            report.failures[method.id] = f"{response.status_code}"
            if response.status_code in TRANSIENT:
                report.transient.add(method.id)

    async def _batch(
        self,
        user_id: str,
        methods: list[Method],
        default_id: str | None,
        report: DeletionReport,
        revoke_sessions: bool,
    ) -> list[Method] | None:
        """One $batch; the verified method list when the re-read inside it ran, else None."""
        # Graph runs a batch either fully in parallel or fully in sequence ("Batch should be either fully
        # sequential or fully parallel", json-batching): each item depends on the one before it, so the
        # default method goes last and alternateMobile before mobile (the sort order), all in one round trip.
        items: list[BatchItem] = []
        if revoke_sessions:
            items.append(BatchItem(id="revoke", method="POST", url=f"/users/{segment(user_id)}/revokeSignInSessions"))
        by_id: dict[str, Method] = {}
        ordered = [m for m in methods if m.id != default_id] + [m for m in methods if m.id == default_id]
        for index, method in enumerate(ordered):
            item_id = f"m{index}"
            by_id[item_id] = method
            depends = [items[-1].id] if items else []
            items.append(BatchItem(id=item_id, method="DELETE", url=method.path(user_id), depends_on=depends))
        verify = len(items) < MAX_BATCH
        if verify:
            path = f"/users/{segment(user_id)}/authentication/methods"
            depends = [items[-1].id] if items else []
            items.append(BatchItem(id="verify", method="GET", url=path, depends_on=depends))
        results: dict = {}
        for chunk in chunks(items):
            results.update(await run_batch(self._caller, chunk))
        if "revoke" in results:
            if not results["revoke"].ok:
                raise batch_error(results["revoke"], "POST", "revokeSignInSessions")
            report.revoked = True
        for item_id, method in by_id.items():
            result = results.get(item_id)
            if result is None or result.ok or result.status == 404:  # 404: already gone (a redelivery)
                continue
            error = (result.body or {}).get("error", {}) if isinstance(result.body, dict) else {}
            report.failures[method.id] = f"{result.status} {error.get('code', '')}: {error.get('message', '')}"
            if result.status in TRANSIENT or result.status == 424:  # 424: behind a throttled item
                report.transient.add(method.id)
            else:
                report.transient.discard(method.id)
        verified = results.get("verify")
        if not verify or verified is None or not verified.ok:
            return None
        listed = [parse_method(item) for item in (verified.body or {}).get("value", [])]
        return listed + [m for m in methods if m.beta]
