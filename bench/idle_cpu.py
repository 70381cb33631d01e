"""Idle CPU of the app with a tab open: `streamlit run app.py` from the project root (so the file watcher
sees .venv and data/ as `make run` does), one Chromium tab on a page, then the server's CPU time over a
window from /proc/PID/stat (all its threads). Prints % of one core. Stops the server and the browser.

    python bench/idle_cpu.py                       # the project's .streamlit/config.toml
    python bench/idle_cpu.py --watcher auto        # as before the fix (Streamlit's default watcher)
    python bench/idle_cpu.py --page Generate --seconds 60

Goal (issue 13): < 2% of one core with nothing running.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--watcher", help="override server.fileWatcherType (auto, poll, none); default: config.toml")
    ap.add_argument("--page", default="", help="page URL path, e.g. Generate (default: Home)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring window (default 60)")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds after the page loads before measuring")
    ap.add_argument("--home", help="MIRROR_HOME (default: a fresh temporary folder)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    home = args.home or tempfile.mkdtemp(prefix="idle-cpu-")
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true"]
    if args.watcher:
        cmd += ["--server.fileWatcherType", args.watcher]
    env = dict(os.environ, MIRROR_HOME=home, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    log_path = Path(home) / "streamlit.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                print(log_path.read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page()
                page.goto(f"{base}/{args.page}", wait_until="domcontentloaded")
                page.get_by_text("Mind's Mirror Studio" if not args.page else args.page).first.wait_for(timeout=60_000)
                time.sleep(args.warmup)
                c0, t0 = cpu_seconds(server.pid), time.monotonic()
                time.sleep(args.seconds)
                c1, t1 = cpu_seconds(server.pid), time.monotonic()
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
    overflow = log_path.read_text(errors="replace").count("overflow")
    pct = 100.0 * (c1 - c0) / (t1 - t0)
    print(f"watcher={args.watcher or 'config.toml'} page=/{args.page} window={t1 - t0:.0f}s "
          f"server CPU {c1 - c0:.2f}s = {pct:.1f}% of one core; 'overflow' lines in its log: {overflow}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
