"""Runs model-written Python safely: see docs/sandbox.md for what holds where.

from thinkchain.sandbox import Sandbox
Sandbox().run('"strawberry".count("r")').output   # '3\n'
"""

from __future__ import annotations

from thinkchain.sandbox.isolation import IsolationReport, Layer, isolation_report
from thinkchain.sandbox.limits import SandboxLimits
from thinkchain.sandbox.result import STATUSES, CodeResult, Status
from thinkchain.sandbox.sandbox import Sandbox

__all__ = [
    "STATUSES",
    "CodeResult",
    "IsolationReport",
    "Layer",
    "Sandbox",
    "SandboxLimits",
    "Status",
    "isolation_report",
]
