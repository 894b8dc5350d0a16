"""The first look at a bearer token, shared by every verifier: the scheme, an RS256 header and the signing key id."""

from __future__ import annotations

import jwt

ALGORITHM = "RS256"


def bearer_and_kid(authorization: str | None, rejected: type[Exception]) -> tuple[str, str]:
    """(token, kid) from an Authorization header, or `rejected(reason)`; nothing here is trusted yet.

    Only RS256 is accepted before any key is looked up, so neither `none` nor an HMAC keyed with a public key
    can get as far as the signature check.
    """
    if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise rejected("a bearer token is required")
    token = authorization[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise rejected(f"the token is malformed: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise rejected(f"the token must be signed with {ALGORITHM}, not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise rejected("the token names no signing key (kid)")
    return token, kid
