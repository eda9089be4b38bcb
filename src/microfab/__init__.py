"""microfab: an open-source operating system for Hong Kong smart micro-factories."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("microfab")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__"]
