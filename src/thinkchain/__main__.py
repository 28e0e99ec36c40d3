"""``python -m thinkchain`` is the ``thinkchain`` command."""

from thinkchain.cli import main

main()
