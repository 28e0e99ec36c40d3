"""The sandbox's audit hook: defence in depth under the kernel's layers, never the only wall.

Part of the bootstrap (bootstrap.py): the host puts this file's text into the bootstrap's where
the bootstrap marks it, and the sandboxed interpreter runs them as one script.  So it is
written as the bootstrap is: the standard library only, and nothing imported at run time
beyond what the bootstrap imports itself.
"""

from __future__ import annotations

import _stat
import posix as _posix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

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
