"""Typed errors of the storage layer."""


class StoreError(Exception):
    """Storage is misconfigured or unreachable."""


class StorageNotConfigured(StoreError):
    """Neither a connection string nor an identity-based storage account is configured."""
