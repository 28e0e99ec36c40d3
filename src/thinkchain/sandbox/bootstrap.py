"""The first code the sandboxed interpreter runs (passed with ``python -I -S -c``).

It sets the resource limits, drops to the run's own unprivileged uid, installs the audit
hook, then runs the model's code like a notebook cell and writes a one-line JSON outcome to
the result pipe.  It uses the standard library only: the sandbox has no site-packages.
Nothing here is trusted by the host beyond the outcome of the code's own run.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: it would slow every start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FILENAME = "<code>"  # the name tracebacks give the model's code
ERROR_CHARS = 1500  # a short error: enough for a small model to fix its code
SETUP_FAILED = 70  # exit status when the sandbox could not be set up (the code never ran)

# Events refused whatever their arguments, with the sentence the code sees.
_REFUSED: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.", "poplib.", "imaplib."),
        "the sandbox has no network",
    ),
    (("nntplib.", "telnetlib.", "webbrowser."), "the sandbox has no network"),
    (
        ("subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.system", "pty."),
        "the sandbox cannot start processes",
    ),
    (("os.kill",), "the sandbox cannot send signals"),
    (("ctypes.",), "ctypes is not available in the sandbox"),
    (("resource.",), "the sandbox's limits are fixed"),
    (("os.link", "os.symlink"), "the sandbox cannot create links"),
    (("code.__new__", "sys.remote_exec", "sqlite3."), "not available in the sandbox"),
)
# Modules whose C code reaches files or processes without raising an audit event (a name
# starting with _ also refuses every module whose name starts with it).
_REFUSED_IMPORTS = (
    "ctypes",
    "_ctypes",
    "_posixsubprocess",
    "_sqlite3",
    "sqlite3",
    "_dbm",
    "_gdbm",
    "dbm",
    "_test",
    "_xxsub",
    "_xxinterp",
)
# Write-like events: the event, positions of its path arguments, positions of dir_fd ones
# (an event passes -1 or None there when the call had no dir_fd).
_WRITES: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("os.mkdir", (0,), (2,)),
    ("os.rmdir", (0,), (1,)),
    ("os.remove", (0,), (1,)),
    ("os.rename", (0, 1), (2, 3)),
    ("os.chmod", (0,), (2,)),
    ("os.chown", (0,), (3,)),
    ("os.utime", (0,), (3,)),
    ("os.truncate", (0,), ()),
    ("os.chflags", (0,), ()),
    ("os.lchflags", (0,), ()),
    ("os.setxattr", (0,), ()),
    ("os.removexattr", (0,), ()),
    ("shutil.rmtree", (0,), (1,)),
)
_READS = ("os.listdir", "os.scandir", "os.listxattr", "os.getxattr")
# Function attributes whose replacement would change what the hook does: code is frozen for
# every function; defaults (which namedtuple sets) only for the hook's own.
_FROZEN_ATTRS = ("__defaults__", "__kwdefaults__")


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def make_hook(readable: tuple[str, ...], writable: tuple[str, ...]) -> Callable[[str, Any], None]:
    """The audit hook: defence in depth under the kernel's layers, never the only wall."""
    import os

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    everything = readable + writable

    # What the hook uses is bound as defaults (immutable tuples), so rebinding a global or
    # patching a module does not blind it; its defaults and code cannot be replaced either.
    def hook(
        event: str,
        args: Any,
        _fsdecode: Callable[[Any], str] = os.fsdecode,
        _fspath: Callable[[Any], Any] = os.fspath,
        _real: Callable[[str], str] = os.path.realpath,
        _isdir: Callable[[str], bool] = os.path.isdir,
        _refused: tuple[tuple[tuple[str, ...], str], ...] = _REFUSED,
        _imports: tuple[str, ...] = _REFUSED_IMPORTS,
        _writes: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = _WRITES,
        _reads: tuple[str, ...] = _READS,
        _frozen: tuple[str, ...] = _FROZEN_ATTRS,
        _r: tuple[str, ...] = everything,
        _w: tuple[str, ...] = writable,
        _wf: int = write_flags,
        _in: Callable[[str, tuple[str, ...]], bool] = _inside,
        _own: Any = None,  # the hook's own code object, set below
    ) -> None:
        def resolve(path: Any) -> str:
            text = _fsdecode(_fspath(path))
            if not text.startswith("/") and ".." in text.split("/"):
                raise PermissionError(f"sandbox: {text!r}: '..' in a relative path is refused")
            return _real(text)

        def refuse(what: str, path: Any) -> None:
            raise PermissionError(f"sandbox: {what} {_fsdecode(_fspath(path))!r} is refused")

        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = bool((mode and any(c in mode for c in "wax+")) or (flags or 0) & _wf)
            real = resolve(path)
            if writing and not _in(real, _w):
                refuse("writing to", path)
            if not _in(real, _r):
                refuse("reading", path)
            if _isdir(real) and not _in(real, _w):
                refuse("opening the folder", path)
            return
        if event == "import":
            name = args[0] or ""
            top = name.partition(".")[0]
            if any(top == m or (m[0] == "_" and top.startswith(m)) for m in _imports):
                raise ImportError(f"sandbox: the module {name!r} is not available in the sandbox")
            return
        if event in _reads:
            path = args[0] if args and args[0] is not None else "."
            if not isinstance(path, int) and not _in(resolve(path), _r):
                refuse("listing", path)
            return
        for name, paths, dir_fds in _writes:
            if event != name:
                continue
            if any(i < len(args) and args[i] not in (None, -1) for i in dir_fds):
                raise PermissionError(f"sandbox: {event} with dir_fd is refused")
            for i in paths:
                path = args[i]
                if isinstance(path, int) and event == "os.truncate":
                    continue  # a descriptor only a checked open can have given
                if isinstance(path, int) or not _in(resolve(path), _w):
                    refuse(f"{event} on", path)
            return
        if event in ("object.__setattr__", "object.__delattr__") and len(args) > 1:
            ours = getattr(args[0], "__code__", None) is _own
            if args[1] == "__code__" or (args[1] in _frozen and ours):
                raise PermissionError(f"sandbox: replacing a function's {args[1]} is refused")
        for prefixes, sentence in _refused:
            if event.startswith(prefixes):
                raise PermissionError(f"sandbox: {event}: {sentence}")

    hook.__defaults__ = (*(hook.__defaults__ or ())[:-1], hook.__code__)
    return hook


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
    except Exception:  # the code may have broken the traceback module itself
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_CHARS else "…" + text[-ERROR_CHARS:]


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
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
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
        if exc.code is None or exc.code == 0:
            return {"status": "ok", "error": None, "exit_code": 0}
        if isinstance(exc.code, int):
            return {
                "status": "error",
                "error": f"exited with status {exc.code}",
                "exit_code": exc.code,
            }
        print(exc.code, file=sys.stderr)
        return {"status": "error", "error": str(exc.code)[:ERROR_CHARS], "exit_code": 1}
    except MemoryError as exc:
        import gc

        scope.clear()
        gc.collect()
        try:
            error = short_traceback(exc)
        except MemoryError:
            error = "MemoryError"
        return {"status": "memory", "error": error, "exit_code": 1}
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


def main() -> None:
    import os

    # The host writes the config as a Python literal; only the host sets this argument.
    config = eval(sys.argv[1], {"__builtins__": {}})
    fd = config["result_fd"]
    try:
        _limit(config["rlimits"])
        if config["uid"] is not None:
            _drop_to(config["uid"])
        os.chdir(config["workdir"])
        with open(config["code"], encoding="utf-8", errors="surrogatepass") as fh:
            code = fh.read()
        os.set_inheritable(fd, False)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        if config["audit"]:
            sys.addaudithook(make_hook(tuple(config["read"]), tuple(config["write"])))
    except BaseException as exc:
        _write(fd, {"status": "sandbox_error", "error": f"sandbox setup failed: {exc!r}"})
        os._exit(SETUP_FAILED)
    outcome = run_code(code)
    _write(fd, outcome)
    sys.exit(outcome["exit_code"])


if __name__ == "__main__":
    main()
