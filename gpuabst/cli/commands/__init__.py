"""Subcommands beyond the core ones, one module each (see EXTRA_COMMAND_MODULES in main.py)."""
