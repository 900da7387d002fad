"""A killed skysort command takes its temporary Prefect server with it (issue 23, item 11).

Without ``PREFECT_API_URL`` each command starts a temporary Prefect server; a SIGKILL
of the command used to leave that server running (about 230 MB each). The quick
tests kill a parent holding a lifeline to a plain child; the slow one kills a real
``skysort stage query`` that is waiting on a SkyServer that never answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skysort.pipeline.lifeline import _end, is_running, start_time
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds processes through /proc (Linux)"
)


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _parent_holding_a_lifeline(tmp_path: Path, then: str) -> tuple[subprocess.Popen, int]:
    """A parent process that ties a sleeping child to itself, then does ``then``."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import subprocess, sys, time
        from skysort.pipeline.lifeline import tie_to_this_process
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        assert tie_to_this_process(child.pid)
        print(child.pid, flush=True)
        {then}
    """)
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    return parent, child


@pytest.mark.parametrize("death", ["SIGKILL", "a plain exit"])
def test_a_tied_process_ends_when_its_parent_dies(tmp_path, death):
    then = "time.sleep(600)" if death == "SIGKILL" else "sys.exit(0)"
    parent, child = _parent_holding_a_lifeline(tmp_path, then)
    started = start_time(child)
    try:
        if death == "SIGKILL":
            assert is_running(child, started)
            parent.send_signal(signal.SIGKILL)
        assert parent.wait(timeout=60) == (-signal.SIGKILL if death == "SIGKILL" else 0)
        wait_for(lambda: is_running(child, started), lambda up: not up, timeout=60,
                 interval=0.1, what=f"the tied child {child} to end")  # fmt: skip
    finally:
        if is_running(child, started):
            os.kill(child, signal.SIGKILL)


def test_a_pid_given_to_another_process_is_never_signalled():
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        _end(other.pid, "1", grace_s=0.1)  # tied at another start time: not this process
        assert other.poll() is None
        _end(other.pid, start_time(other.pid), grace_s=5)
        assert other.wait(timeout=30) == -signal.SIGTERM
    finally:
        other.kill()
        other.wait()


@pytest.mark.slow
def test_a_killed_stage_leaves_no_temporary_server(tmp_path):
    """SIGKILL ``skysort stage query`` mid-run: its temporary Prefect server ends too."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = (tmp_path / "stage.log").open("w")
    with socket.socket() as silent:  # accepts connections, never answers: the query waits
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        stage = subprocess.Popen(
            [sys.executable, "-m", "skysort.flows.cli", "stage", "query",
             "--set", "source.kind=skyserver", "--set", f"source.skyserver.base_url={url}",
             "--set", "source.skyserver.timeout_s=600"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        helpers: dict[int, str] = {}
        try:
            # the server and the watcher that ties it to the stage, both children of it
            helpers = wait_for(
                lambda: _children(stage.pid),
                lambda c: any("prefect.server.api.server" in v for v in c.values())
                and any("lifeline.py" in v for v in c.values()),
                timeout=180, what="the stage's temporary server and its lifeline",
                context=lambda: (tmp_path / "stage.log").read_text()[-3000:],
            )  # fmt: skip
            started = {pid: start_time(pid) for pid in helpers}
            assert stage.poll() is None, "the stage ended before it could be killed"
            stage.send_signal(signal.SIGKILL)
            assert stage.wait(timeout=60) == -signal.SIGKILL
            wait_for(
                lambda: {p: c for p, c in helpers.items() if is_running(p, started[p])},
                lambda left: not left, timeout=60, interval=0.2,
                what="the temporary server and the lifeline to end after the kill",
            )  # fmt: skip
        finally:
            if stage.poll() is None:
                stage.kill()
                stage.wait()
            for pid in helpers:  # never leave a server behind, even when the test fails
                if is_running(pid, start_time(pid)):
                    os.kill(pid, signal.SIGKILL)
            log.close()
