"""``medio`` subcommand families: each module defines ``add_subcommands(subparsers)``."""
