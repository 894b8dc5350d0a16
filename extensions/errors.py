"""Typed errors of the extension: each maps to one HTTP answer and says what was wrong."""


class ExtensionError(Exception):
    """Base of the extension's errors."""


class CallerRejected(ExtensionError):
    """The callout's bearer token failed verification (→ 401, nothing recorded)."""


class SigningKeysUnavailable(ExtensionError):
    """The tenant's OIDC metadata or JWKS could not be read (→ 503, EM retries)."""


class ChannelRejected(ExtensionError):
    """A request to the bot's messaging endpoint failed Bot Connector authentication (→ 401, nothing sent)."""
