"""Observing: what is measured and kept around each item, and how a run is shown.

Owns captured output and the stage meter (the worker side of capture and
metrics), per-item features of plugins, their built-in plugins, the
reporter base class, the live progress view of a run and the built-in
reporters. May import :mod:`curator.model` and :mod:`curator.plugin_host`;
never a backend, the run, the checkpoint or the command line.
"""
