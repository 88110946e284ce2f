"""The installed version, from package metadata (one source of truth: pyproject.toml)."""

from importlib import metadata

try:
    __version__ = metadata.version("node-dns")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
