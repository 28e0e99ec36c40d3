"""The chain: how a question becomes titled steps and an answer.

Its loop (``loop``), shapes, model calls, step formats, guards, prompts and strategies; the
events it emits and the fold every consumer reads them through (``view``, ``run_view``); the
backend protocol it is written against (``backend``).  Nothing here knows of terminals, pages
or HTTP routes, nor of any particular model: those live in ``thinkchain.models`` and the faces.
"""
