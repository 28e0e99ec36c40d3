"""The first code the sandboxed interpreter runs (passed with ``python -I -S -c``).

It sets the resource limits, drops to the run's own unprivileged uid, installs the audit
hook, then runs the model's code like a notebook cell and writes a one-line JSON outcome to
the result pipe.  It uses the standard library only: the sandbox has no site-packages.
Nothing here is trusted by the host beyond the outcome of the code's own run.
"""

from __future__ import annotations

import _stat  # noqa: F401 (the audit hook's, spliced in below, uses it)
import posix as _posix
import sys

TYPE_CHECKING = False  # typing is not imported at run time: it would slow every start
if TYPE_CHECKING:
    from typing import Any

FILENAME = "<code>"  # the name tracebacks give the model's code
ERROR_CHARS = 1500  # a short error: enough for a small model to fix its code
SETUP_FAILED = 70  # exit status when the sandbox could not be set up (the code never ran)

# -- the audit hook: audit_hook.py's text goes here (commands.bootstrap_source) --
if TYPE_CHECKING:
    from thinkchain.sandbox.audit_hook import make_hook


def _limit(rlimits: dict[str, Any]) -> None:
    import resource

    for name, value in rlimits.items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _drop_to(uid: int) -> None:
    import os

    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
        raise OSError(f"could not drop to uid {uid}")


def _describe(exc: BaseException) -> str:
    """The exception in one line, whatever its class does when it is shown."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except BaseException:  # its __str__ (or its class's name) raises or recurses
        try:
            return f"{type(exc).__name__} (its message could not be shown)"
        except BaseException:
            return "an exception whose message could not be shown"


def short_traceback(exc: BaseException) -> str:
    """The last lines of the traceback inside the model's code, and the exception itself."""
    try:
        import traceback  # only on an error: its imports would slow every start

        if isinstance(exc, SyntaxError):
            lines = traceback.format_exception_only(type(exc), exc)
        else:
            tb = traceback.extract_tb(exc.__traceback__)
            frames = [f for f in tb if f.filename == FILENAME]
            lines = ["Traceback (most recent call last):\n"]
            lines += traceback.StackSummary.from_list(frames[-3:]).format()
            lines += traceback.format_exception_only(type(exc), exc)
        text = "".join(lines).rstrip()
    except BaseException:  # the code may have broken the traceback module, or the exception
        text = _describe(exc)
    if type(text) is not str:
        text = _describe(exc)
    return text if len(text) <= ERROR_CHARS else "…" + text[-(ERROR_CHARS - 1) :]


class Watched:
    """A stream that remembers whether the code wrote anything to it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.used = False

    def write(self, text: str) -> int:
        self.used = self.used or bool(text)
        return int(self.stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _exit_status(code: object) -> dict[str, Any]:
    """The outcome of ``sys.exit(code)``."""
    if code is None:
        return {"status": "ok", "error": None, "exit_code": 0}
    if isinstance(code, int):
        number = int.__index__(code)  # an int subclass cannot answer otherwise
        if number == 0:
            return {"status": "ok", "error": None, "exit_code": 0}
        if not -(2**31) <= number < 2**31:
            return {"status": "error", "error": "exited with a status out of range", "exit_code": 1}
        return {"status": "error", "error": f"exited with status {number}", "exit_code": number}
    message = _shown(code)
    print(message, file=sys.stderr)
    return {"status": "error", "error": message[:ERROR_CHARS], "exit_code": 1}


def _shown(value: object) -> str:
    """str(value), or a placeholder where its __str__ fails."""
    try:
        text = str(value)
        return text if type(text) is str else "(a message that is not text)"
    except BaseException:
        return "(a message that could not be shown)"


def _out_of_memory(exc: BaseException, scope: dict[str, Any]) -> dict[str, Any]:
    import gc

    scope.clear()
    gc.collect()
    try:
        error = short_traceback(exc)
    except MemoryError:
        error = "MemoryError"
    return {"status": "memory", "error": error, "exit_code": 1}


def _at_memory_limit() -> bool:
    """Whether the process's peak memory came within a tenth of its address-space limit."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return limit != resource.RLIM_INFINITY and peak >= 0.9 * limit


def run_code(code: str) -> dict[str, Any]:
    """Run the code as a notebook cell: a last bare expression's value is printed, and so is
    the value of a last assignment to a name when the code printed nothing else."""
    import _ast  # the ast module's C half: the Python half would slow every start
    import builtins
    import linecache

    try:
        tree = compile(code, FILENAME, "exec", _ast.PyCF_ONLY_AST)
        if not isinstance(tree, _ast.Module):
            raise ValueError("the code did not parse to a module")
        last = None
        assigned = None  # the name a last assignment binds
        final = tree.body[-1] if tree.body else None
        if isinstance(final, _ast.Expr):
            tree.body.pop()
            last = compile(_ast.Expression(body=final.value), FILENAME, "eval")
        elif isinstance(final, _ast.Assign) and len(final.targets) == 1:
            target = final.targets[0]
            assigned = target.id if isinstance(target, _ast.Name) else None
        elif isinstance(final, (_ast.AugAssign, _ast.AnnAssign)) and final.value is not None:
            assigned = final.target.id if isinstance(final.target, _ast.Name) else None
        body = compile(tree, FILENAME, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # ValueError: a NUL byte; RecursionError: nesting too deep for the parser
        return {"status": "error", "error": short_traceback(exc), "exit_code": 1}
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    scope = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None}
    streams = (Watched(sys.stdout), Watched(sys.stderr))
    sys.stdout, sys.stderr = streams
    try:
        exec(body, scope)
        value = None
        if last is not None:
            value = eval(last, scope)
        elif assigned is not None and not any(stream.used for stream in streams):
            # Silence is no result: a small model that stored its answer is shown it.
            value = scope.get(assigned)
        if value is not None:
            print(repr(value))
    except SystemExit as exc:
        return _exit_status(exc.code)
    except MemoryError as exc:
        return _out_of_memory(exc, scope)
    except SystemError as exc:
        if _at_memory_limit():
            # CPython 3.11 fails a frame it cannot allocate (deep recursion at the address
            # space limit) with "error return without exception set" instead of MemoryError.
            return _out_of_memory(exc, scope)
        return {"status": "error", "error": short_traceback(exc), "exit_code": 1}
    except BaseException as exc:
        return {"status": "error", "error": short_traceback(exc), "exit_code": 1}
    return {"status": "ok", "error": None, "exit_code": 0}


def _json(value: Any) -> str:
    """JSON for the outcome's few types (the json module's imports would slow every start)."""
    from _json import encode_basestring_ascii

    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json(str(k))}: {_json(v)}" for k, v in value.items()) + "}"
    return str(encode_basestring_ascii(str(value)))


def _write(fd: int, outcome: dict[str, Any]) -> None:
    import os

    data = (_json(outcome) + "\n").encode()
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass  # the code closed the pipe: the host then judges by the exit status alone


def _read_all(fd: int) -> bytes:
    import os

    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _finish(exit_code: int) -> None:
    """Ends the process as the interpreter would, but without its finalization.

    Non-daemon threads are waited for and atexit functions run, with the audit hook on; then
    the process exits at once.  The interpreter's own finalization would clear the audit
    hooks before it destroys the code's objects, whose __del__ would then run unwatched.
    """
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except BaseException:
        pass
    _posix._exit(exit_code & 0xFF)


def main() -> None:
    import os

    # The host writes the config as a Python literal; only the host sets this argument.
    config = eval(sys.argv[1], {"__builtins__": {}})
    fd = config["result_fd"]
    try:
        if config["cgroup_fd"] is not None:
            # Into the run's memory cgroup (the host opened its cgroup.procs): every process
            # the code starts is then counted there too.
            os.write(config["cgroup_fd"], b"0")
            os.close(config["cgroup_fd"])
        _limit(config["rlimits"])
        if config["uid"] is not None:
            _drop_to(config["uid"])
        os.chdir(config["workdir"])
        code = _read_all(config["code_fd"]).decode("utf-8", "surrogatepass")
        os.set_inheritable(fd, False)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        if config["audit"]:
            sys.addaudithook(make_hook(tuple(config["read"]), tuple(config["write"])))
    except BaseException as exc:
        _write(fd, {"status": "sandbox_error", "error": f"sandbox setup failed: {exc!r}"})
        os._exit(SETUP_FAILED)
    # The code may have replaced what the rest of this uses (this module's globals, builtins):
    # it can spoil the report of its own run, but the process still ends here, at once.
    try:
        outcome = run_code(code)
        _write(fd, outcome)
        exit_code = int(outcome["exit_code"])
    except BaseException:
        exit_code = 1
    _finish(exit_code)


if __name__ == "__main__":
    main()
