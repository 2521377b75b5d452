"""Subcommands of ``skinscan``: each module has ``add_arguments(parser)`` and ``run(args)``."""
