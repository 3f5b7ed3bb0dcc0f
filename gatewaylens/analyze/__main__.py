"""``python -m gatewaylens.analyze`` = the ``analyze`` command."""

from gatewaylens.analyze.cli import main

main()
