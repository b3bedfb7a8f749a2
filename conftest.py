"""Repository-wide pytest configuration: backends are a command-line parameter."""

pytest_plugins = ["testkit.plugin"]
