"""Command-line interface (``fairreprogram --help``)."""

from fairreprogram.cli._app import app, main

__all__ = ["app", "main"]
