"""Models and serving: where the tokens come from.

The backends that implement the chain's protocol (in-process llama.cpp, OpenAI-compatible
servers, the scripted one), the embedded models and their download (``embedded``, ``hub``),
saved prompt prefixes (``prefixes``) and the servers ``thinkchain serve`` starts (``serve``).
"""
