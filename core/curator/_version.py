"""The version of curator-core."""

__version__ = "0.1.0"
