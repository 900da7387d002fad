"""End helper processes when this process dies, however it dies (SIGKILL included).

A process stops its helpers at exit, but a process killed with SIGKILL (``kill -9``,
the OOM killer, a CI time limit) never reaches its exit: its helpers are adopted by
init and live on. A lifeline is a small watcher process reading a pipe whose write end
only this process holds. When this process dies, the kernel closes that end, the
watcher reads end-of-file and ends the processes tied to it: SIGTERM, then SIGKILL
after a grace period. Nothing polls and nothing depends on how the process died; it
works wherever pipes and signals do (Linux, macOS). A tied process is named by its
pid and, where ``/proc`` tells it (Linux), its start time, so a pid the system has
since given to another process is never signalled.

Stdlib only: the watcher runs this file as a script (``python -I lifeline.py``), so
it starts in a few tens of milliseconds and needs no installed package.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

log = logging.getLogger("skysort.pipeline.lifeline")

GRACE_S = 5.0
"""Seconds a tied process gets to stop after SIGTERM before it is killed."""

_lock = threading.Lock()
_watcher: subprocess.Popen[bytes] | None = None


def tie_to_this_process(pid: int, grace_s: float = GRACE_S) -> bool:
    """End process ``pid`` when this process dies; False (and a warning) if that cannot be done.

    The first call starts the watcher; it lives as long as this process and ends
    with it. The watcher runs in a session of its own, so a Ctrl-C meant for this
    process's terminal reaches this process, not the watcher.
    """
    global _watcher
    with _lock:
        try:
            if _watcher is None or _watcher.poll() is not None:
                _watcher = subprocess.Popen(
                    [sys.executable, "-I", str(Path(__file__).resolve()), str(grace_s)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            stream: IO[bytes] = _watcher.stdin  # type: ignore[assignment]
            stream.write(f"{pid} {start_time(pid) or '-'}\n".encode())
            stream.flush()
        except (OSError, ValueError) as exc:
            log.warning("process %d is not tied to this one (%s): it may outlive a kill", pid, exc)
            return False
    return True


def start_time(pid: int) -> str | None:
    """Process ``pid``'s start time (clock ticks since boot) from ``/proc``; None without it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may hold spaces


def is_running(pid: int, started: str | None = None) -> bool:
    """True while ``pid`` runs (a zombie, or another process given its pid, is not it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (started is None or fields[19] == started)


def _end(pid: int, started: str | None, grace_s: float) -> None:
    """SIGTERM ``pid`` if it is still the process tied; SIGKILL it after ``grace_s``."""
    last = getattr(signal, "SIGKILL", signal.SIGTERM)  # no SIGKILL on Windows
    for sig, wait_s in ((signal.SIGTERM, grace_s), (last, grace_s)):
        if not is_running(pid, started):
            return
        try:
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_running(pid, started):
            time.sleep(0.05)


def _watch(grace_s: float) -> None:
    """The watcher: read ``pid start`` lines until end-of-file, then end those processes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tied = []
    for line in sys.stdin:
        pid, started = line.split()
        tied.append((int(pid), None if started == "-" else started))
    for pid, started in tied:  # the parent is gone (or let go): end what it tied
        _end(pid, started, grace_s)


if __name__ == "__main__":
    _watch(float(sys.argv[1]) if len(sys.argv) > 1 else GRACE_S)
