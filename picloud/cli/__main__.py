"""``python -m picloud.cli`` is the ``picloud`` command."""
from picloud.cli import main

main(prog_name="picloud")
