"""Prefect's temporary server, ended with the process that started it, even by SIGKILL.

Without ``PREFECT_API_URL`` every process that runs a flow starts a temporary Prefect
server (a uvicorn subprocess, about 230 MB) and stops it at exit. A process killed
with SIGKILL never reaches its exit, so its server lived on. Prefect 3.8 offers no
setting or hook to tie that subprocess to its parent (its startup plugins would run
in every Prefect process and enable every installed plugin), so
:func:`start_tied_temporary_server` starts the server itself, before the first flow
run: Prefect's own ``SubprocessASGIServer``, the one every client of this process then
reuses, and ties its process to this one with a lifeline
(:mod:`skysort.pipeline.lifeline`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from skysort.pipeline.lifeline import tie_to_this_process

log = logging.getLogger("skysort.tasks.temporary_server")


def start_tied_temporary_server() -> int | None:
    """Start the temporary server now unless a Prefect API is set; return its pid.

    None when ``PREFECT_API_URL`` names a server (nothing to start or to end).
    Starting it here costs nothing extra: the first flow run would start it anyway.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer  # the server's code: only now

    server = SubprocessASGIServer()  # the instance Prefect's clients use (one per process)
    server.start()
    if server.server_process is None:  # pragma: no cover - start() raises instead
        return None
    pid = server.server_process.pid
    tie_to_this_process(pid)
    log.debug("temporary Prefect server %s (pid %d) ends with this process", server.api_url, pid)
    return pid


def start_while_importing(modules: Iterable[str] = ()) -> Callable[[], int | None]:
    """Start the temporary server on a thread, import ``modules`` meanwhile; return the wait.

    The server's process boots on its own (about 10 s on 2 cores) while this process
    imports what its run needs anyway (the flow's modules, Keras), so a run pays for
    the longer of the two instead of their sum. Call the returned function before the
    first flow run: it waits for the server and returns its pid, or raises what
    starting it raised.
    """
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # the server's code is imported here, on this thread: two threads importing the
        # same package at once can deadlock on its import locks
        from prefect.server.api.server import SubprocessASGIServer  # noqa: F401
    pool = ThreadPoolExecutor(1, thread_name_prefix="prefect-temporary-server")
    started = pool.submit(start_tied_temporary_server)
    pool.shutdown(wait=False)
    for name in modules:
        importlib.import_module(name)
    return started.result
