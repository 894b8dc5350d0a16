"""Typed errors of the provisioning CLI: each says what the operator must do, never echoes a token."""

from __future__ import annotations


class ProvisionError(Exception):
    """Anything that stops a plan or an apply."""


class ConfigError(ProvisionError):
    """provision.yaml is missing, unreadable or invalid."""


class NotFoundInTenant(ProvisionError):
    """Something provision.yaml names (a group, the function's identity) does not exist in the tenant."""


class MissingPermission(ProvisionError):
    """Graph answered 403: the operator lacks a role or permission; the message names which."""

    def __init__(self, step: str, need: str, graph_message: str):
        super().__init__(
            f"Graph refused '{step}' (403: {graph_message}). The operator needs {need}. "
            "Grant it (or sign in as someone who has it) and run the command again; steps already applied stay."
        )
        self.step = step
        self.need = need
