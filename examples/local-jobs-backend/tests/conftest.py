pytest_plugins = ["curator.testing.pytest_plugin"]
