"""The ways servers spell "answer in this JSON schema", and which one each server accepted.

What a server accepted is remembered per server and model for the whole process, shared by
every backend instance.
"""

from __future__ import annotations

from typing import Any

from thinkchain.models.backends.server_pool import normalise_url

# Tried in this order until a server accepts one; see DESIGN.md for who speaks what.
# json_object with a schema comes before guided_json because servers that ignore unknown
# fields (llama-cpp-python's server, for one) would accept guided_json without enforcing it.
DIALECTS = ("json_schema", "json_object_schema", "guided_json", "json_object", "none")
ENFORCING_DIALECTS = {"json_schema", "guided_json", "json_object_schema"}
# Statuses that, while a server's dialect is still unknown, mean "not this way of asking".
DIALECT_REJECTIONS = {400, 404, 415, 422, 500, 501}

# (base_url, model) -> the dialect that server accepted.
_dialect_memory: dict[tuple[str, str], str] = {}
# Servers that refuse ``stream_options`` (they send no usage in streams).
_no_stream_usage: set[str] = set()


def remembered_dialect(base_url: str, model: str) -> str | None:
    return _dialect_memory.get((normalise_url(base_url), model))


def remember_dialect(base_url: str, model: str, dialect: str) -> None:
    _dialect_memory[(normalise_url(base_url), model)] = dialect


def forget_dialects() -> None:
    _dialect_memory.clear()
    _no_stream_usage.clear()


def refuses_stream_usage(base_url: str) -> bool:
    return base_url in _no_stream_usage


def note_refuses_stream_usage(base_url: str) -> None:
    _no_stream_usage.add(base_url)


def schema_fields(dialect: str, schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The request-body fields that ask for ``schema`` in ``dialect`` (none for "none")."""
    if dialect == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        }
    if dialect == "guided_json":
        return {"guided_json": schema}
    if dialect == "json_object_schema":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if dialect == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}
