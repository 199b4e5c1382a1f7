"""The command line's pieces: each subcommand in its own module, imported only when it runs."""
