"""`python -m phones sync ...`: see phones/cli.py."""

from .cli import app

app(prog_name="python -m phones")
