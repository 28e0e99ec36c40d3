"""The first code the sandboxed interpreter runs (passed with ``python -I -S -c``).

It sets the resource limits, drops to the run's own unprivileged uid, installs the audit
hook, then runs the model's code like a notebook cell and writes a one-line JSON outcome to
the result pipe.  It uses the standard library only: the sandbox has no site-packages.
Nothing here is trusted by the host beyond the outcome of the code's own run.
"""

from __future__ import annotations

import _stat
import posix as _posix
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


def _realpath(
    path: str,
    _lstat: Callable[[str], Any] = _posix.lstat,
    _readlink: Callable[[str], str] = _posix.readlink,
    _getcwd: Callable[[], str] = _posix.getcwd,
    _islink: Callable[[int], bool] = _stat.S_ISLNK,
    _oserror: type[OSError] = OSError,
    _refused: type[PermissionError] = PermissionError,
) -> str:
    """The path with every symbolic link resolved, as the kernel would follow it.

    Like os.path.realpath, but built only on C functions bound here: code that patches
    posixpath or os cannot change what it answers.
    """
    if not path.startswith("/"):
        path = _getcwd() + "/" + path
    todo = path.split("/")[::-1]
    done: list[str] = []
    links = 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        here = "/" + "/".join([*done, name])
        try:
            is_link = _islink(_lstat(here).st_mode)
        except _oserror:
            is_link = False
        if not is_link:
            done.append(name)
            continue
        links += 1
        if links > 40:  # the kernel's own bound: a loop of links
            raise _refused(f"sandbox: {path!r}: too many levels of symbolic links")
        target = _readlink(here)
        if target.startswith("/"):
            done = []
        todo += target.split("/")[::-1]
    return "/" + "/".join(done)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    # A loop, not any(): the hook's helpers look up no builtin the code could replace.
    for root in roots:  # noqa: SIM110
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


def _checked_path(
    path: Any,
    _fspath: Callable[[Any], Any] = _posix.fspath,
    _type: type[type] = type,
    _bytes: type[bytes] = bytes,
    _real: Callable[[str], str] = _realpath,
    _refused: type[PermissionError] = PermissionError,
) -> str:
    """A path argument of an event as text, with its links resolved."""
    text = _fspath(path)
    if _type(text) is _bytes:
        text = text.decode("utf-8", "surrogateescape")
    if not text.startswith("/") and ".." in text.split("/"):
        raise _refused(f"sandbox: {text!r}: '..' in a relative path is refused")
    return _real(text)


def _is_dir(
    path: str,
    _stat_of: Callable[[str], Any] = _posix.stat,
    _isdir: Callable[[int], bool] = _stat.S_ISDIR,
    _oserror: type[OSError] = OSError,
) -> bool:
    try:
        return _isdir(_stat_of(path).st_mode)
    except _oserror:
        return False


# The hook's helpers: their code is frozen like the hook's, and so are their defaults.
_HELPERS = (_realpath, _inside, _checked_path, _is_dir)


def make_hook(readable: tuple[str, ...], writable: tuple[str, ...]) -> Callable[[str, Any], None]:
    """The audit hook: defence in depth under the kernel's layers, never the only wall.

    It looks up no name at run time: every function and type it uses is bound as a default
    (a tuple, which cannot change), and they are C functions or helpers built the same way.
    So rebinding a global of this module, a builtin, a module's function or a closure's cell
    does not change what it decides; replacing its code or its defaults is refused by itself.
    """
    write_flags = _posix.O_WRONLY | _posix.O_RDWR | _posix.O_CREAT | _posix.O_TRUNC
    write_flags |= _posix.O_APPEND
    everything = readable + writable

    def hook(
        event: str,
        args: Any,
        _refused: tuple[tuple[tuple[str, ...], str], ...] = _REFUSED,
        _imports: tuple[str, ...] = _REFUSED_IMPORTS,
        _writes: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = _WRITES,
        _reads: tuple[str, ...] = _READS,
        _frozen: tuple[str, ...] = _FROZEN_ATTRS,
        _r: tuple[str, ...] = everything,
        _w: tuple[str, ...] = writable,
        _wf: int = write_flags,
        _in: Callable[[str, tuple[str, ...]], bool] = _inside,
        _path: Callable[[Any], str] = _checked_path,
        _dir: Callable[[str], bool] = _is_dir,
        _fspath: Callable[[Any], Any] = _posix.fspath,
        _exit: Callable[[int], None] = _posix._exit,
        _type: type[type] = type,
        _int: type[int] = int,
        _str: type[str] = str,
        _len: Callable[[Any], int] = len,
        _getattr: Callable[..., Any] = getattr,
        _denied: type[PermissionError] = PermissionError,
        _import_error: type[ImportError] = ImportError,
        _own: tuple[Any, ...] = (),  # the code of the hook and its helpers, set below
    ) -> None:
        if event == "open":
            path, mode, flags = args
            if _type(path) is _int:
                return
            writing = (flags or 0) & _wf
            if mode:
                for c in mode:
                    if c in "wax+":
                        writing = 1
            real = _path(path)
            if writing and not _in(real, _w):
                raise _denied(f"sandbox: writing to {_fspath(path)!r} is refused")
            if not _in(real, _r):
                raise _denied(f"sandbox: reading {_fspath(path)!r} is refused")
            if _dir(real) and not _in(real, _w):
                raise _denied(f"sandbox: opening the folder {_fspath(path)!r} is refused")
            return
        if event == "import":
            name = args[0] if _type(args[0]) is _str else ""
            # Every part of the name: a refused module loaded under another package's name
            # ("x._ctypes" from its file) is still that module.
            for part in name.split("."):
                for m in _imports:
                    if part == m or (m[0] == "_" and part.startswith(m)):
                        raise _import_error(
                            f"sandbox: the module {name!r} is not available in the sandbox"
                        )
            origin = args[1] if _len(args) > 1 else None
            if origin is not None and not _in(_path(origin), _r):
                # An extension module from outside the interpreter's own standard library.
                raise _import_error(f"sandbox: loading {name!r} from {origin!r} is refused")
            return
        if event in _reads:
            path = args[0] if args and args[0] is not None else "."
            if _type(path) is not _int and not _in(_path(path), _r):
                raise _denied(f"sandbox: listing {_fspath(path)!r} is refused")
            return
        for name, paths, dir_fds in _writes:
            if event != name:
                continue
            for i in dir_fds:
                if i < _len(args) and args[i] is not None and args[i] != -1:
                    raise _denied(f"sandbox: {event} with dir_fd is refused")
            for i in paths:
                path = args[i]
                if _type(path) is _int and event == "os.truncate":
                    continue  # a descriptor only a checked open can have given
                if _type(path) is _int or not _in(_path(path), _w):
                    raise _denied(f"sandbox: {event} on {path!r} is refused")
            return
        if event in ("object.__setattr__", "object.__delattr__") and _len(args) > 1:
            ours = _getattr(args[0], "__code__", None) in _own
            if args[1] == "__code__" or (args[1] in _frozen and ours):
                raise _denied(f"sandbox: replacing a function's {args[1]} is refused")
        if event in ("cpython.PyInterpreterState_Clear", "cpython._PySys_ClearAuditHooks"):
            # The interpreter is finishing: next it drops its audit hooks, then destroys
            # objects the code left (a codec search function's defaults, sys's dict) whose
            # __del__ would run unwatched.  The bootstrap never ends this way (it exits at
            # once), so the code tampered with its ending: stop before the hooks are gone.
            _exit(1)
        for prefixes, sentence in _refused:
            if event.startswith(prefixes):
                raise _denied(f"sandbox: {event}: {sentence}")

    own = (hook.__code__, *(f.__code__ for f in _HELPERS))
    hook.__defaults__ = (*(hook.__defaults__ or ())[:-1], own)
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
