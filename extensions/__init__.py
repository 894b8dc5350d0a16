"""The Entitlement Management custom extension: HTTP functions, payload models, stage playbooks, worker."""
