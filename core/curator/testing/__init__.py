"""The backend conformance kit: the contract every curator backend must honour, as tests.

Opt in from a backend's test suite (pytest is needed: ``pip install
curator-core[testing]``)::

    # conftest.py
    pytest_plugins = ["curator.testing.pytest_plugin"]

    # test_conformance.py
    from curator.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "my-backend"

Tests are gated on the capabilities the backend declares. See
``docs/testing.md`` for the options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curator.testing.conformance import BackendConformance

__all__ = ["HEAVY_MODULES", "BackendConformance"]

HEAVY_MODULES = frozenset(
    {"dask", "distributed", "joblib", "loky", "numpy", "pandas", "torch", "ray", "cloudpickle"}
)
"""Execution engines and libraries that listing backends or importing curator must not import."""


def __getattr__(name: str) -> Any:
    # Imported on use: the conformance module needs pytest, the core does not.
    if name == "BackendConformance":
        from curator.testing.conformance import BackendConformance

        return BackendConformance
    raise AttributeError(f"module 'curator.testing' has no attribute {name!r}")
