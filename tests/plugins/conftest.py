"""tests/plugins/ holds example plugin packages, each with its own tests, which run against the
plugin once it is installed (tests/test_example_plugin.py installs it and runs them); the main
test run does not collect them directly."""

collect_ignore_glob = ["*/tests/*", "*/gpuabst_example/*"]
