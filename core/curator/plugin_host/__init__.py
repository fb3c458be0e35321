"""The plugin host: hookspecs, loading plugins, the registry, relaying events to hooks.

Owns the hook specifications (the plugin contract), the entry-point loading
and switching off of plugins by name, the compatibility check of a plugin's
``curator-core`` requirement, declared options and requirements of plugins,
the :class:`~curator.plugin_host.registry.Registry` of backends, reporters and
per-item features, and the relay that calls event hooks with their errors
contained. May import :mod:`curator.model`, and the base classes of the
plugin kinds it registers (:mod:`curator.backends.backend`,
:mod:`curator.observing.reporter`, :mod:`curator.observing.features`); never
the run, the checkpoint or the command line.
"""
