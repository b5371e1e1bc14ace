"""``python -m nettrial``: the same as the ``nettrial`` command."""

from nettrial.cli import main

main()
