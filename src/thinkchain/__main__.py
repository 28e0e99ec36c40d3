"""``python -m thinkchain`` is the ``thinkchain`` command."""

from .cli import main

main()
