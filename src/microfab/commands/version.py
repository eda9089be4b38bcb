"""``microfab version``: print the installed version."""

from __future__ import annotations

from microfab import __version__
from microfab.console import out


def version() -> None:
    """Print the microfab version."""
    out.print(f"microfab {__version__}")
