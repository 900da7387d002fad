"""Write docs/img/prefect-ui-*.png: a finished run as the Prefect UI shows it.

Starts a Prefect server with its UI on a free port of 127.0.0.1 (in a temporary
PREFECT_HOME), runs the pipeline on a small simulated survey with ``task:
multilabel`` and two explained objects in a throw-away copy of the project, then
screenshots the run's page (the task graph), its summary, its plots and its
explanations with headless Chromium (Debian package ``chromium``). Offline; about two
minutes. Not part of the tests: the suite never needs a browser.

    python docs/prefect_ui_screenshots.py
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/project.py

from tests.project import make_project  # noqa: E402

RUN = {
    "query": {"n_objects": 300},
    "baselines": {"models": ["logreg", "tree", "gboost"]},
    "train": {"epochs": 4, "model": "fusion"},
    "evaluate": {"explain": 2, "lime_samples": 40},
}
# page -> (file under docs/img, window height, kept height: the top of the page)
SHOTS = {
    "run": ("prefect-ui-run.png", 900, 540),
    "summary": ("prefect-ui-summary.png", 1100, 900),
    "plots": ("prefect-ui-plots.png", 1950, 1950),
    "explanations": ("prefect-ui-explanations.png", 760, 760),
}
WIDTH = 1280
OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
}


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs headless Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="skysort-ui-") as tmp:
        work = Path(tmp)
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, **OFFLINE, "PREFECT_HOME": str(work / "home"), "PREFECT_API_URL": api,
               "PREFECT_UI_API_URL": api}  # fmt: skip
        server = _start_server(port, env, work / "server.log")
        try:
            project = make_project(work / "proj", RUN)
            params = yaml.safe_load((project / "params.yaml").read_text())
            params["task"] = "multilabel"
            (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            skysort = Path(sys.executable).with_name("skysort")
            subprocess.run([str(skysort), "run"], cwd=project, env=env, check=True)
            pages = _pages(api)
            for name, url in pages.items():
                _screenshot(chromium, f"http://127.0.0.1:{port}{url}", name, work)
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    sys.exit(f"the Prefect server did not start:\n{log.read_text()[-2000:]}")


def _pages(api: str) -> dict[str, str]:
    """The UI's path of each page to shoot, from the latest pipeline run."""
    runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 20})
    run = next(r for r in runs.json() if r["name"].startswith("pipeline:"))
    body = {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 100}
    artifacts = {a["key"]: a["id"] for a in httpx.post(f"{api}/artifacts/filter", json=body).json()}
    return {
        "run": f"/runs/flow-run/{run['id']}",
        "summary": f"/artifacts/artifact/{artifacts['multilabel-run-summary']}",
        "plots": f"/artifacts/artifact/{artifacts['multilabel-evaluate-plots']}",
        "explanations": f"/artifacts/artifact/{artifacts['multilabel-evaluate-explanations']}",
    }


def _screenshot(chromium: str, url: str, name: str, work: Path) -> None:
    out, height, kept = SHOTS[name]
    raw = work / f"{name}.png"
    profile = work / f"chromium-{name}"
    profile.mkdir()
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", "--hide-scrollbars",
         "--virtual-time-budget=15000", f"--screenshot={raw}", url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    picture = Image.open(raw).convert("RGB")
    picture = picture.crop((0, 0, picture.width, min(kept, picture.height)))
    # 256 colours: the UI is flat colour and text, and the pages stay ~50-120 KB
    picture.quantize(colors=256).save(ROOT / "docs" / "img" / out, optimize=True)
    print(f"docs/img/{out}: {url}")


if __name__ == "__main__":
    main()
