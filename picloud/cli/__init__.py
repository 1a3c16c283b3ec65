"""The ``picloud`` command: apps as folders of files, deployed over the admin API (docs/cli.md).

It talks to a server only over HTTP and imports nothing of the server, so it runs
wherever Python and click do.
"""
from picloud.cli.commands import main

__all__ = ["main"]
