"""Page loads in a real browser: every page of the app on a store with 100k CoTs, timed in Chromium.

Builds a project home with 100k CoTs and 300k self-evaluations (mirror_core.review.seed), a snapshot,
two finished train runs with logged losses, one train run that is live (status running, a heartbeat,
metrics, a worker process that sleeps), and two finished evaluations. Starts `streamlit run app.py`
on 127.0.0.1, then for each page opens it from a fresh browser profile ("first visit": the frontend is
downloaded and compiled), in a new tab of a browser that has used the app before ("new tab": a new
Streamlit session; the profile, on disk as a user's is, opened every page twice, so its HTTP cache and
Chromium's compiled-code cache hold the frontend) and reloads that tab ("reload"), timing from navigation
until the script run
has finished and nothing is still drawing (the same test the browser tests use to say a page has settled).
Then it clicks each page's sidebar link in one open tab ("navigate": the same session, how a user moves
through the app). The goal is for the new tab, the reload and the navigation; the first visit is shown beside them.
`--root DIR` times the app of another checkout (e.g. a worktree of the previous commit) with this bench.

Goal (issue 13, item 10): every page <= 1.5 s. Usage:
    .venv/bin/python bench/page_load_bench.py [--cots 100000] [--repeat 3] [--home DIR]
`--home DIR` reuses (or builds once into) DIR, so before/after runs time the same store. `--incognito` keeps
the warm profile in memory (no compiled-code cache), as this bench did before 2026-12-06 (it also warmed
the profile with the home page only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
PAGES = [("Home", "", "Mind's Mirror Studio"), ("Data", "/Data", "Data"), ("Generate", "/Generate", "Generate"),
         ("Review", "/Review", "Review"), ("Train", "/Train", "Train"), ("Evaluate", "/Evaluate", "Evaluate"),
         ("Loops", "/Loops", "Feedback loops")]
SETTLED_JS = ("() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
              " return app && app.dataset.testScriptState === 'notRunning'"
              " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
              " && !!document.querySelector('h1'); }")


def _loss_rows(run_id: int, steps: int, tasks: list[str], rng: random.Random, every: int = 10) -> list[tuple]:
    rows = []
    for s in range(1, steps + 1):
        per = {t: 9.0 * (0.6 + 0.4 * 0.995 ** s) + rng.uniform(-0.3, 0.3) for t in tasks}
        rows += [(run_id, s, f"loss/{t}", v) for t, v in per.items()]
        rows += [(run_id, s, "loss", sum(per.values())), (run_id, s, "lr", 1e-4), (run_id, s, "tokens_per_s", 250.0)]
        if s % every == 0:
            rows += [(run_id, s, "dev/loss", sum(per.values()) + 0.5)]
            rows += [(run_id, s, f"dev/loss/{t}", v + 0.2) for t, v in per.items()]
    return rows


def build(home: Path, cots: int) -> dict:
    """The 100k-CoT store with runs for every page; returns what the live run needs."""
    from mirror_core import jobs, snapshots, store
    from mirror_core.evaluation import metrics
    from mirror_core.review import seed

    home.mkdir(parents=True, exist_ok=True)
    marker = home / "page_load_bench.json"
    if marker.exists():
        return json.loads(marker.read_text())
    os.environ["MIRROR_HOME"] = str(home)
    conn = store.connect(home)
    t = time.perf_counter()
    seed.seed(conn, questions=cots // 4, cots_per_question=4, evals_per_cot=3,
              teachers=("fake", "local", "openai:gpt-4o-mini"), batch=20000)
    snap = snapshots.create_snapshot(conn, "bench-correct", "correct")
    rng = random.Random(0)
    ts = store.now()

    def run(kind, cfg, status, name, parent=None, result=None):
        rid = jobs.submit(conn, kind, cfg, name=name, snapshot_id=snap["id"], parent_run_id=parent, start=False)
        conn.execute("UPDATE runs SET status = ?, started_at = ?, finished_at = ?, result = ?, progress_done = 1,"
                     " progress_total = 1 WHERE id = ?",
                     (status, ts, ts if status != "running" else None, store.dumps(result), rid))
        return rid

    run("generate", {"dataset": "seeded", "split": "train", "teachers": ["fake"], "n_cots": 4, "k_evals": 3},
        "succeeded", "generate seeded")
    tasks = {"mindsmirror": ["answer", "cot", "verdict", "critique"], "answer-only": ["answer"]}
    train_ids = {}
    for method, ts_ in tasks.items():
        rid = run("train", {"student": "tiny", "method": method, "tasks": ts_}, "succeeded", f"{method} tiny")
        conn.executemany("INSERT INTO metrics (run_id, step, key, value, created_at) VALUES (?, ?, ?, ?, ?)",
                         [r + (ts,) for r in _loss_rows(rid, 600, ts_, rng)])
        train_ids[method] = rid
    test = [r[0] for r in conn.execute("SELECT id FROM examples WHERE split = 'test' ORDER BY id LIMIT 200")]
    for method, tid in train_ids.items():
        correct = [int(rng.random() < 0.3) for _ in test]
        conf = [min(1.0, max(0.0, 0.3 + 0.4 * c + rng.uniform(-0.3, 0.3))) for c in correct]
        result = metrics.calibration_summary(conf, correct)
        result.update(split="test", train_run=tid, tasks=tasks[method], student="tiny",
                      self_eval_trained="verdict" in tasks[method])
        eid = run("eval", {"train_run": tid, "split": "test"}, "succeeded", f"eval of run {tid}", tid, result)
        conn.executemany(
            "INSERT INTO predictions (run_id, example_id, sample_index, output, answer, correct, self_verdict,"
            " confidence, meta, created_at) VALUES (?, ?, 0, 'The answer is 1.', '1', ?, 'correct', ?, NULL, ?)",
            [(eid, e, c, p, ts) for e, c, p in zip(test, correct, conf)])
    live = run("train", {"student": "tiny", "method": "mindsmirror", "tasks": tasks["mindsmirror"]}, "running",
               "live mindsmirror tiny")
    conn.executemany("INSERT INTO metrics (run_id, step, key, value, created_at) VALUES (?, ?, ?, ?, ?)",
                     [r + (ts,) for r in _loss_rows(live, 300, tasks["mindsmirror"], rng)])
    log = home / f"live-{live}.log"
    log.write_text("".join(f"step {s}: loss 20.1\n" for s in range(300)))
    conn.execute("UPDATE runs SET progress_done = 300, progress_total = 1000, progress_note = 'step 300/1000',"
                 " log_path = ? WHERE id = ?", (str(log), live))
    conn.execute("ANALYZE")
    conn.close()
    info = {"live_run": live, "build_s": time.perf_counter() - t, "cots": cots}
    marker.write_text(json.dumps(info))
    return info


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_live_worker(home: Path, run_id: int) -> subprocess.Popen:
    """A process that reads as the live run's worker to jobs.reap (its argv names _run-job and the run)."""
    from mirror_core import store

    proc = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(float(sys.argv[1]))", "3600",
                             "_run-job", str(run_id)], start_new_session=True)
    conn = store.connect(home)
    conn.execute("UPDATE runs SET pid = ?, pgid = ?, heartbeat_at = ? WHERE id = ?",
                 (proc.pid, proc.pid, store.now(), run_id))
    conn.close()
    return proc


def start_app(home: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, MIRROR_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(root))
    log = open(home / "streamlit-bench.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            raise SystemExit("streamlit did not start:\n" + (home / "streamlit-bench.log").read_text()[-2000:])
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _timed(page, action) -> float:
    t = time.perf_counter()
    action()
    page.wait_for_function(SETTLED_JS, timeout=120_000, polling=20)
    return time.perf_counter() - t


KINDS = ("first visit", "new tab", "reload", "navigate")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
NAVIGATED_JS = ("(before) => { const h = document.querySelector('h1');"
                " return h && h.textContent !== before && (" + SETTLED_JS + ")(); }")


def _navigate(page, path: str) -> float:
    """Click the page's link in the sidebar (the same tab and session: how a user moves between pages) and
    time it until the new page has settled."""
    before = page.locator("h1").first.text_content()
    link = page.locator(f'[data-testid="stSidebarNavLink"][href$="{path or "/"}"]').first
    t = time.perf_counter()
    link.click()
    page.wait_for_function(NAVIGATED_JS, arg=before, timeout=120_000, polling=20)
    return time.perf_counter() - t


def measure(base: str, repeat: int, incognito: bool = False) -> dict[str, dict[str, list[float]]]:
    """Per page: "first visit" (a fresh browser profile: nothing cached, the frontend downloaded and compiled),
    "new tab" (another tab of a browser that has opened the app before: a new Streamlit session, the HTTP
    cache warm), "reload" (F5 in that tab: a new session again), "navigate" (its sidebar link clicked from the
    page before it, in one tab that stays open: the same session)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, list[float]]] = {name: {k: [] for k in KINDS} for name, _, _ in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            warm = browser.new_page()  # the server's first script run imports the app's modules: not a page load
            warm.goto(base)
            warm.wait_for_function(SETTLED_JS, timeout=120_000)
            warm.close()
            for _ in range(repeat):
                if incognito:  # the bench before 2026-12-06: an in-memory profile, so no V8 code cache on disk
                    profile = browser.new_context(viewport={"width": 1400, "height": 1000})
                else:  # a profile on disk, as a user's browser has: HTTP cache and compiled-code cache
                    profile = p.chromium.launch_persistent_context(
                        tempfile.mkdtemp(prefix="plbench-profile-"), executable_path=CHROMIUM, args=ARGS,
                        viewport={"width": 1400, "height": 1000})
                for _visit in range(2):  # a browser that has used the app: every page opened twice, so its
                    for _name, path, _ in PAGES:  # caches hold the frontend and the chunks each page loads
                        first = profile.new_page()
                        first.goto(base + path)
                        first.wait_for_function(SETTLED_JS, timeout=120_000)
                        first.close()
                for name, path, _ in PAGES:
                    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = ctx.new_page()
                    out[name]["first visit"].append(_timed(page, lambda: page.goto(base + path)))
                    ctx.close()
                    page = profile.new_page()
                    out[name]["new tab"].append(_timed(page, lambda: page.goto(base + path)))
                    page.wait_for_timeout(500)
                    out[name]["reload"].append(_timed(page, lambda: page.reload()))
                    page.close()
                nav = profile.new_page()
                nav.goto(base + PAGES[-1][1])
                nav.wait_for_function(SETTLED_JS, timeout=120_000)
                for name, path, _ in PAGES:
                    nav.wait_for_timeout(500)
                    out[name]["navigate"].append(_navigate(nav, path))
                nav.close()
                profile.close()
        finally:
            browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cots", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", help="build the store here once and reuse it (default: a temporary folder)")
    ap.add_argument("--root", help="the checkout whose app.py is served (default: this one)")
    ap.add_argument("--incognito", action="store_true",
                    help="new tab / reload / navigate in an in-memory profile (no compiled-code cache), as this "
                         "bench did before 2026-12-06; by default a profile on disk, as a user's browser is")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = None
    if args.home:
        home = Path(args.home).resolve()
    else:
        tmp = tempfile.TemporaryDirectory()
        home = Path(tmp.name) / "home"
    info = build(home, args.cots)
    print(f"store: {info['cots']:,} CoTs (built in {info['build_s']:.0f} s) under {home}")
    load = os.getloadavg()
    worker = start_live_worker(home, info["live_run"])
    app, base = start_app(home, Path(args.root).resolve() if args.root else ROOT)
    try:
        times = measure(base, args.repeat, args.incognito)
    finally:
        stop(app)
        stop(worker)
        if tmp is not None:
            tmp.cleanup()
    worst = 0.0
    print(f"page load in Chromium ({'in-memory' if args.incognito else 'on-disk'} profile), median of "
          f"{args.repeat} (goal <= 1.5 s); load average before/after: "
          f"{load[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"    {'page':9} " + "  ".join(f"{k:>11}" for k in KINDS))
    for name, kinds in times.items():
        med = {k: statistics.median(v) for k, v in kinds.items()}
        worst = max(worst, med["new tab"], med["reload"], med["navigate"])
        print(f"    {name:9} " + "  ".join(f"{med[k]:9.2f} s" for k in KINDS)
              + f"   (all: {'; '.join(', '.join(f'{x:.2f}' for x in kinds[k]) for k in KINDS)})")
    print(f"slowest new tab / reload / navigate: {worst:.2f} s  {'OK' if worst <= 1.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
