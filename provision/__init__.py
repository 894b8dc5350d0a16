"""Operator setup of the Entra side (catalog, extensions, packages, policies, permissions) as reviewable code."""
