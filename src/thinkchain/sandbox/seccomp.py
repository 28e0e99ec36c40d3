"""A seccomp filter for bubblewrap's ``--seccomp FD``: system calls sandboxed code never needs.

The filter is classic BPF written out here (no libseccomp, no ctypes): bubblewrap loads it
right before it starts the interpreter.  It refuses the kernel's riskiest interfaces for
unprivileged code (new namespaces, ptrace, keyrings, BPF, io_uring, mounts, modules), memory
that no address-space limit counts (SysV IPC, memfd, POSIX message queues, AIO) and sockets
other than Unix and IP ones.  Only x86_64 is covered: syscall numbers differ per
architecture and this table is checked against x86_64's headers; elsewhere there is no
filter and the isolation report says so.
"""

from __future__ import annotations

import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000  # x32 ABI calls would dodge a table of x86_64 numbers

# seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_NR, _ARCH, _ARG0 = 0, 4, 16  # little-endian: the low 32 bits of args[0]

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000

# x86_64 numbers (asm/unistd_64.h) of calls refused with EPERM.
REFUSED_X86_64 = {
    # Memory that no address-space limit counts: SysV shared memory, semaphores and message
    # queues (each IPC namespace allows gigabytes of them), memfd files, POSIX message queues,
    # and the kernel-wide AIO pool.  The stdlib never needs them.
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "semtimedop": 220,
    "memfd_create": 319,
    "memfd_secret": 447,
    "mq_open": 240,
    "mq_unlink": 241,
    "mq_timedsend": 242,
    "mq_timedreceive": 243,
    "mq_notify": 244,
    "mq_getsetattr": 245,
    "io_setup": 206,
    "io_destroy": 207,
    "io_getevents": 208,
    "io_submit": 209,
    "io_cancel": 210,
    "io_pgetevents": 333,
    # Watches count against the user's kernel-wide inotify limits (shared with the host's
    # own user where bubblewrap runs without root).
    "inotify_init": 253,
    "inotify_init1": 294,
    "ptrace": 101,
    "syslog": 103,
    "uselib": 134,
    "modify_ldt": 154,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "quotactl_fd": 443,
}
CLONE_X86_64 = 56
CLONE3_X86_64 = 435
SOCKET_X86_64 = 41
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
NAMESPACE_FLAGS |= 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
ALLOWED_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def supported() -> bool:
    """Whether this machine's architecture has a filter here."""
    return platform.machine() in ("x86_64", "AMD64")


def program() -> bytes:
    """The filter as bubblewrap reads it: an array of ``struct sock_filter``."""
    if not supported():
        raise RuntimeError(f"no seccomp filter for {platform.machine()}")
    eperm = RET_ERRNO | errno.EPERM
    ops = [
        _op(_LD_ABS, _ARCH),
        _op(_JEQ, AUDIT_ARCH_X86_64, jt=1),
        _op(_RET, RET_KILL_PROCESS),  # another ABI (i386) has other numbers: never allowed
        _op(_LD_ABS, _NR),
        _op(_JGE, X32_SYSCALL_BIT, jf=1),
        _op(_RET, eperm),
    ]
    for number in sorted(REFUSED_X86_64.values()):
        ops += [_op(_JEQ, number, jf=1), _op(_RET, eperm)]
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc use clone.
    ops += [_op(_JEQ, CLONE3_X86_64, jf=1), _op(_RET, RET_ERRNO | errno.ENOSYS)]
    ops += [
        _op(_JEQ, CLONE_X86_64, jf=4),
        _op(_LD_ABS, _ARG0),
        _op(_JSET, NAMESPACE_FLAGS, jf=1),
        _op(_RET, eperm),
        _op(_RET, RET_ALLOW),
    ]
    families = ALLOWED_SOCKET_FAMILIES
    ops += [_op(_JEQ, SOCKET_X86_64, jf=len(families) + 3), _op(_LD_ABS, _ARG0)]
    for i, family in enumerate(families):
        ops.append(_op(_JEQ, family, jt=len(families) - i))
    ops += [_op(_RET, RET_ERRNO | errno.EAFNOSUPPORT), _op(_RET, RET_ALLOW)]
    ops.append(_op(_RET, RET_ALLOW))
    return b"".join(ops)
