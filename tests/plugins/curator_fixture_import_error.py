"""A plugin whose hook module fails to import."""

import curator_fixture_this_module_does_not_exist  # noqa: F401
