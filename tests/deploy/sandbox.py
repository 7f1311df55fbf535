"""Run a command under the kernel side of a systemd unit's sandbox, as systemd would: ``python -m
tests.deploy.sandbox [--no-new-privileges] [--deny-write-execute] [--syscalls NAME,...] [--umask 0027] --
argv...``.

The parts emulated are the ones a program can trip over and that need no privilege: NoNewPrivileges= (the
prctl), MemoryDenyWriteExecute= (``PR_SET_MDWE``, which systemd itself uses where the kernel has it),
SystemCallFilter= (a seccomp allow-list through libseccomp, failing other calls with EPERM as
SystemCallErrorNumber=EPERM does) and UMask=. Mount namespaces (ProtectSystem=, PrivateTmp=) need root and are
left to systemd; their paths are the test's temporary root instead.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}, {value}): {os.strerror(code)}")


def _seccomp_allow(names: list[str]) -> None:
    path = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(path)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(SCMP_ACT_ERRNO | errno.EPERM)
    if not ctx:
        raise OSError("seccomp_init failed")
    for name in names:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        # a name this architecture does not have (negative) is skipped, as systemd does
        if number >= 0 and lib.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, number, 0) != 0:
            raise OSError(f"seccomp_rule_add({name}) failed")
    if lib.seccomp_load(ctx) != 0:
        raise OSError("seccomp_load failed")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.sandbox")
    parser.add_argument("--no-new-privileges", action="store_true")
    parser.add_argument("--deny-write-execute", action="store_true")
    parser.add_argument("--syscalls", default="", help="comma-separated allow-list")
    parser.add_argument("--umask", default="")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    if args.umask:
        os.umask(int(args.umask, 8))
    if args.no_new_privileges or args.syscalls:  # seccomp without privilege needs no_new_privs
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if args.deny_write_execute:
        _prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)
    if args.syscalls:
        _seccomp_allow(args.syscalls.split(","))
    os.execv(args.command[0], args.command)


if __name__ == "__main__":
    main(sys.argv[1:])
