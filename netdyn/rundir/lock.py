"""One writer per run: an exclusive ``flock`` on ``<run dir>/train.lock`` for as long as a process trains it.

A second process -- a concurrent job, or an orphan of a killed Snakemake still training -- cannot take the
lock and stops at once with :class:`RunLockedError`, naming the run, the lock file and the holder's pid and
host (the holder writes them into the file). The kernel drops a flock when its holder dies (SIGKILL
included), so a lock file left by a dead process is simply taken over. The holder deletes the file when it
lets go; a taker checks that the file it locked is still the one at the path, so a deletion racing with
an open cannot let two processes in.

Locks are per process: taking a run this process already holds is a no-op (the trainer and its caller
both ask). The file descriptor is not inherited across exec (PEP 446). flock works between hosts on
NFSv4 (Linux emulates it with POSIX locks there), not on NFSv3 mounts without a lock manager.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .names import LOCK

_HELD: dict[Path, int] = {}  # lock file -> open descriptor holding its flock, in this process


class RunLockedError(RuntimeError):
    """Another process is training the run."""


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on host {info['host']} (since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its pid yet"


def _acquire(path: Path) -> int:
    for _ in range(100):  # retried only when a holder deleted the file between our open and flock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"run {path.parent.name}: another process is training it - {path} is locked by {holder}. "
                "Stop that process (an orphan of a killed Snakemake?) or let it finish, then run again; a "
                "lock whose holder died is released by the system.") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S %z"), "argv": sys.argv[:4]}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
            return fd
        os.close(fd)
    raise RunLockedError(f"run {path.parent.name}: {path} kept changing while it was being locked")


class RunLocks:
    """Exclusive locks of several run directories, taken in order (all or none) and released together.

    ``with RunLocks(dirs):`` or ``acquire()`` / ``release()``; runs this process already holds are skipped
    and left held."""

    def __init__(self, run_dirs):
        self.paths = [Path(os.path.abspath(d)) / LOCK for d in run_dirs]
        self.taken: list[Path] = []

    def acquire(self) -> "RunLocks":
        try:
            for path in self.paths:
                if path in _HELD:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                _HELD[path] = _acquire(path)
                self.taken.append(path)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self.taken:
            path = self.taken.pop()
            fd = _HELD.pop(path)
            try:
                path.unlink(missing_ok=True)  # while still locked: nobody can be between open and flock on it
            finally:
                os.close(fd)  # drops the flock

    def __enter__(self) -> "RunLocks":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holds(run_dir: str | Path) -> bool:
    """Whether this process holds the run's lock."""
    return Path(os.path.abspath(run_dir)) / LOCK in _HELD
