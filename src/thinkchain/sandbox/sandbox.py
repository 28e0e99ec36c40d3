"""The sandbox: runs model-written Python in a separate, isolated, limited process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from thinkchain.sandbox.isolation import Choice, IsolationReport, isolation_report
from thinkchain.sandbox.launch import SandboxUnavailable, launch
from thinkchain.sandbox.limits import SandboxLimits
from thinkchain.sandbox.outcome import judge
from thinkchain.sandbox.process import Cancel
from thinkchain.sandbox.result import CodeResult, Status

INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap)"


class Sandbox:
    """Runs code from a model and returns what it printed; never raises for bad code.

    ``method`` picks the isolation: "auto" (bubblewrap when it works here, else the
    fallback), "bwrap" or "fallback".  ``audit_hook=False`` leaves out the in-process audit
    hook, so tests can show that the kernel's layers hold on their own.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        method: Choice = "auto",
        audit_hook: bool = True,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.method: Choice = method
        self.audit_hook = audit_hook

    @property
    def isolation(self) -> IsolationReport:
        return isolation_report(self.method)

    def run(self, code: str) -> CodeResult:
        return self._run(code, Cancel())

    async def arun(self, code: str) -> CodeResult:
        """The asyncio form; cancelling it kills the code at once."""
        cancel = Cancel()
        done: concurrent.futures.Future[CodeResult] = concurrent.futures.Future()

        def work() -> None:
            try:
                done.set_result(self._run(code, cancel))
            except BaseException as exc:  # _run catches everything; this is the last guard
                done.set_exception(exc)

        # One thread per run: a shared pool would queue runs behind each other.
        threading.Thread(target=work, name="thinkchain-sandbox", daemon=True).start()
        waiting = asyncio.wrap_future(done)
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            cancel.cancel()
            try:
                await waiting  # the child is killed: this returns within moments
            except asyncio.CancelledError:
                pass
            raise

    def _run(self, code: str, cancel: Cancel) -> CodeResult:
        started = time.monotonic()

        def result(
            status: Status,
            error: str | None,
            output: str = "",
            truncated: bool = False,
            exit_code: int | None = None,
        ) -> CodeResult:
            seconds = round(time.monotonic() - started, 4)
            return CodeResult(code, output, status, error, seconds, truncated, exit_code)

        try:
            report = self.isolation
            if self.limits.require_isolation and not report.safe:
                why = "; ".join(report.problems)
                return result(
                    "sandbox_error",
                    f"refused to run the code: this machine cannot isolate it ({why}); "
                    f"{INSTALL_HINT}, or set require_isolation=False to accept weaker isolation",
                )
            launched = launch(
                code, self.limits, report.method, audit_hook=self.audit_hook, cancel=cancel
            )
        except SandboxUnavailable as exc:
            return result("sandbox_error", f"the sandbox cannot start: {exc}")
        except Exception as exc:
            return result("sandbox_error", f"the sandbox failed: {exc!r}")
        finished = launched.finished
        try:
            status, error, exit_code = judge(finished, self.limits, launched.oom)
        except Exception as exc:  # the last guard: judging what the code left must not raise
            return result("sandbox_error", f"the sandbox failed: {exc!r}", finished.output)
        return result(status, error, finished.output, finished.truncated, exit_code)
