"""Code steps on the proxy: the operator allows them, then each request may ask for them.

A request's ``thinkchain.tools`` (e.g. ``["python"]``) becomes the chain's ``tools`` setting
when the server was started with ``--tools python``; without that it is a 400 that says so,
never silently ignored, because the client would otherwise trust reasoning that ran no code.
"""

from __future__ import annotations

import dataclasses

from thinkchain.chain.settings import Tool
from thinkchain.proxy import reasoning
from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.proxy_settings import ProxySettings
from thinkchain.proxy.reasoning import Plan
from thinkchain.proxy.schemas import ChatCompletionRequest


def requested_tools(body: ChatCompletionRequest, proxy: ProxySettings) -> tuple[Tool, ...]:
    """The tools the request asks for, or a 400 when the operator has not enabled them."""
    asked = body.thinkchain.tools if body.thinkchain is not None else None
    if not asked:
        return ()
    refused = [tool for tool in dict.fromkeys(asked) if tool not in proxy.tools]
    if refused:
        raise ProxyError(
            400,
            f"code steps ({', '.join(refused)}) are not enabled on this server: its operator "
            f"has to start it with --tools {refused[0]} to allow them",
            param="thinkchain.tools",
            code="tools_not_enabled",
        )
    return tuple(dict.fromkeys(asked))


def plan(body: ChatCompletionRequest, proxy: ProxySettings) -> Plan:
    """The request's plan, with the code-step tools it may use."""
    tools = requested_tools(body, proxy)
    planned = reasoning.plan(body, proxy)
    if not tools:
        return planned
    settings = planned.settings.derive(tools=tools)
    return dataclasses.replace(planned, settings=settings)
