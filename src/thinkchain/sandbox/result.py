"""What one sandboxed run gives back, and its JSON form for the history database and eval rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from thinkchain.sandbox.output import marker, sanitize

# The longest error a result holds: enough for a small model to fix its code, and a bound on
# what the code can make the host carry (the code could write any error about its own run).
ERROR_CHARS = 1500
ERROR_HEAD = 500  # of a cut error: its beginning (what stopped the run); the rest its end
# ok             the code ran to the end (exit status 0)
# error          a Python exception, a syntax error, or a non-zero sys.exit
# timeout        stopped by the wall-time or the CPU-time limit
# memory         the code ran out of its memory limit
# output_limit   the code printed more than the sandbox reads and was stopped
# killed         the process died from a signal no limit explains (a crash, an outside kill)
# sandbox_error  the sandbox could not run the code (isolation missing, a start failure)
Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed", "sandbox_error"]
STATUSES: tuple[str, ...] = (
    "ok",
    "error",
    "timeout",
    "memory",
    "output_limit",
    "killed",
    "sandbox_error",
)


@dataclass(frozen=True)
class CodeResult:
    """The outcome of running one piece of code in the sandbox."""

    code: str
    output: str  # stdout and stderr interleaved, cut to the output limit with a marker
    status: Status
    error: str | None  # short traceback or a sentence naming the limit; None when ok
    seconds: float  # start to result, as the caller waited
    truncated: bool  # the output was cut
    exit_code: int | None  # the code's exit status; None when stopped, killed or never run

    def __post_init__(self) -> None:
        # Bounded and printable here, where every result is made: the page, the terminal,
        # the history and the model's feedback all read these fields.
        object.__setattr__(self, "output", sanitize(self.output))
        if self.error is not None:
            object.__setattr__(self, "error", bounded_error(self.error))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeResult:
        """The inverse of ``to_dict``; raises ValueError on a row that is not a result."""
        status = data.get("status")
        if status not in STATUSES:
            raise ValueError(f"not a sandbox result: unknown status {status!r}")
        error = data.get("error")
        exit_code = data.get("exit_code")
        try:
            return cls(
                code=str(data["code"]),
                output=str(data["output"]),
                status=cast(Status, status),
                error=None if error is None else str(error),
                seconds=float(data["seconds"]),
                truncated=bool(data["truncated"]),
                exit_code=None if exit_code is None else int(exit_code),
            )
        except KeyError as exc:
            raise ValueError(f"not a sandbox result: {exc.args[0]!r} is missing") from exc


def bounded_error(error: str) -> str:
    """The error printable and at most ``ERROR_CHARS`` long: its beginning and its end kept."""
    text = sanitize(error)
    if len(text) <= ERROR_CHARS:
        return text
    cut = len(text) - ERROR_CHARS
    for _ in range(3):  # the marker's length depends on the count it names
        tail = ERROR_CHARS - ERROR_HEAD - len(marker(cut))
        cut = len(text) - ERROR_HEAD - tail
    return text[:ERROR_HEAD] + marker(cut) + text[-tail:]
