"""`python -m provision plan|apply|status --config provision.yaml`."""

from .cli import app

app()
