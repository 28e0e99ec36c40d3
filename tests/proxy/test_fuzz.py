"""Fuzzing: requests generated from the proxy's own OpenAPI document, and reasoning-request
bodies generated with hypothesis.  No 5xx, no hang (every call has a bounded timeout)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from thinkchain.chain.settings import MODES

from .conftest import ServerThread

VARIANT = "fake-model-thinkchain"


# Names the generated bodies may use, so fuzzing reaches the reasoning and pass-through paths
# instead of stopping at "unknown model" (random names still get through as well).
MODEL_NAMES = st.sampled_from([None, VARIANT, "fake-model"])


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_requests_from_the_openapi_document_never_get_a_5xx(
    proxy: ServerThread, mode: GenerationMode
) -> None:
    # schemathesis drives hypothesis directly here: its pytest plugin predates this pytest.
    api = schemathesis.openapi.from_url(f"{proxy.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /v1/models",
        "POST /v1/chat/completions",
        "POST /v1/responses",
    }
    if mode is GenerationMode.NEGATIVE:
        # Invalid input only exists where there is input: the request body.
        bodies = ("POST /v1/chat/completions", "POST /v1/responses")
        operations = [op for op in operations if op.label in bodies]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode), name=MODEL_NAMES)
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any, name: str | None) -> None:
            if name is not None and isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = name
            response = case.call(timeout=20)  # a hang fails the test instead of stalling it
            case.validate_response(
                response,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        call()


def test_the_openapi_document_describes_the_api(proxy: ServerThread) -> None:
    document = httpx.get(f"{proxy.url}/openapi.json").json()
    assert {"/health", "/v1/models", "/v1/chat/completions", "/v1/responses"} <= set(
        document["paths"]
    )
    assert {"model", "input", "thinkchain"} <= set(
        document["components"]["schemas"]["ResponsesRequest"]["properties"]
    )
    request = document["components"]["schemas"]["ChatCompletionRequest"]
    assert {"model", "messages", "thinkchain"} <= set(request["properties"])
    options = document["components"]["schemas"]["ThinkchainOptions"]["properties"]
    assert options["mode"]["enum"] == list(MODES)
    assert httpx.get(f"{proxy.url}/docs").status_code == 200


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
content = st.one_of(
    st.text(max_size=40),
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "x"])},
            optional={"text": st.text(max_size=20) | json_values},
        ),
        max_size=2,
    ),
    json_values,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "bad"])},
    optional={"content": content, "name": st.text(max_size=5)},
)
options = st.fixed_dictionaries(
    {},
    optional={
        "max_steps": st.integers(-3, 300) | json_values,
        "min_steps": st.integers(-3, 300),
        "strategy": st.sampled_from(["chain", "sc", "vote"]),
        "k": st.integers(-1, 10),
        "lang": st.sampled_from(["auto", "zh", "en", "fr", ""]),
        "mode": st.sampled_from([*MODES, "psychic"]),
        "surprise": json_values,
    },
)
# Half the conversations end with a proper question, so the chain itself runs often.
conversations = st.lists(message, max_size=3).flatmap(
    lambda ms: st.sampled_from([ms, [*ms, {"role": "user", "content": "What is 2 + 2?"}]])
)
bodies = st.fixed_dictionaries(
    {"model": st.just(VARIANT), "messages": conversations},
    optional={
        "thinkchain": options | json_values,
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "temperature": st.floats(-1, 3) | json_values,
        "max_tokens": st.integers(-5, 10**7),
        "max_completion_tokens": st.integers(-5, 200),
        "seed": st.integers(-(2**70), 2**70),
        "n": st.integers(0, 3),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_reasoning_requests_get_an_answer_or_a_clear_400(proxy: ServerThread, body: Any) -> None:
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"
    elif body.get("stream") is True:
        assert response.text.rstrip().endswith("data: [DONE]"), response.text[-300:]
    else:
        assert response.json()["choices"][0]["message"]["role"] == "assistant"
