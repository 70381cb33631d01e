"""The one job runner: every long task (generate, train, eval, loop) is a detached process.

A job is a row in `runs`. `submit` queues it; `start_ready` launches what the queue allows as
`python -m mirror_core _run-job ID` in its own session (so `stop` can kill the whole process group,
every rank included), with stdout/stderr going to the run's log file — never an undrained pipe.
The config lives in the database, never on the command line, so API keys cannot leak through `ps`.
The worker writes a heartbeat; `reap` marks jobs whose process is gone as failed with the log's tail.
Handlers are idempotent: `resume` simply runs the job again and the handler skips finished work.
"""

from __future__ import annotations

import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mirror_core import config, redact, store
from mirror_core.errors import JobError, MirrorError, NotFoundError

# kind -> "module:function". The function takes a JobContext. Imported lazily in the worker only,
# so the app never imports torch just to list jobs.
HANDLERS: dict[str, str] = {
    "generate": "mirror_core.generation.job:run",
    "train": "mirror_core.training.job:run",
    "eval": "mirror_core.evaluation.job:run",
    "loop": "mirror_core.loops.job:run",
    "experiment": "mirror_core.evaluation.experiment_job:run",  # coordinates child jobs; holds no device
    # for tests of the runner itself: a plain job and one that holds a device like training does
    "sleep": "mirror_core.jobs:_sleep_handler",
    "sleep-device": "mirror_core.jobs:_sleep_handler",
}
# Kinds that hold a device (a GPU, or the CPU when there is none): one at a time per device.
DEVICE_KINDS = {"train", "eval", "loop", "sleep-device"}
TERMINAL = {"succeeded", "failed", "cancelled"}
HEARTBEAT_S = 2.0
LOG_TAIL_LINES = 20


class StopRequested(MirrorError):
    """Raised inside a handler when the user asked the job to stop."""


@dataclass
class JobContext:
    """What a handler gets: its run id and config, the home, a connection and reporting helpers."""

    run_id: int
    kind: str
    config: dict[str, Any]
    home: Path
    conn: sqlite3.Connection
    run_dir: Path
    _stop: threading.Event = field(default_factory=threading.Event)

    def log(self, message: str) -> None:
        print(redact.redact(f"[{store.now()}] {message}"), flush=True)

    def progress(self, done: int, total: int | None = None, note: str | None = None,
                 cost_usd: float | None = None) -> None:
        sets, args = ["progress_done = ?"], [done]
        if total is not None:
            sets.append("progress_total = ?"); args.append(total)
        if note is not None:
            sets.append("progress_note = ?"); args.append(note)
        if cost_usd is not None:
            sets.append("cost_usd = ?"); args.append(cost_usd)
        self.conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*args, self.run_id))

    def metric(self, step: int, **values: float) -> None:
        ts = store.now()
        with store.transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, key, value, created_at) VALUES (?,?,?,?,?)",
                [(self.run_id, step, k, float(v), ts) for k, v in values.items() if v is not None])

    def set_result(self, result: dict[str, Any]) -> None:
        self.conn.execute("UPDATE runs SET result = ? WHERE id = ?", (store.dumps(result), self.run_id))

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def check_stop(self) -> None:
        if self._stop.is_set():
            raise StopRequested("stop requested")


# ---------------------------------------------------------------- submitting and launching

def submit(conn: sqlite3.Connection, kind: str, cfg: dict[str, Any], *, name: str | None = None,
           snapshot_id: int | None = None, parent_run_id: int | None = None, device: str = "cpu",
           home: Path | None = None, start: bool = True) -> int:
    """Queue a job and launch it if the queue allows; returns the run id."""
    if kind not in HANDLERS:
        raise JobError(f"Unknown job kind '{kind}'. Known kinds: {', '.join(sorted(HANDLERS))}.")
    _refuse_secrets(cfg)
    with store.transaction(conn):
        pos = conn.execute("SELECT COALESCE(MAX(queue_position), 0) + 1 FROM runs").fetchone()[0]
        cur = conn.execute(
            "INSERT INTO runs (kind, name, status, config, snapshot_id, parent_run_id, device, queue_position,"
            " created_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            (kind, name, store.dumps(cfg), snapshot_id, parent_run_id, device, pos, store.now()))
        run_id = cur.lastrowid
        log_path = config.run_dir(run_id, home) / "job.log"
        conn.execute("UPDATE runs SET log_path = ? WHERE id = ?", (str(log_path), run_id))
    if start:
        start_ready(conn, home)
    return run_id


def _refuse_secrets(cfg: Any, path: str = "config") -> None:
    """Keys never reach the database: refuse any config field that looks like one."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if any(s in str(k).lower() for s in ("api_key", "apikey", "secret", "password", "token_value")):
                raise JobError(f"{path}.{k} looks like a secret; pass keys through the environment, not the job config.")
            _refuse_secrets(v, f"{path}.{k}")
    elif isinstance(cfg, list):
        for i, v in enumerate(cfg):
            _refuse_secrets(v, f"{path}[{i}]")


def start_ready(conn: sqlite3.Connection, home: Path | None = None,
                extra_env: dict[str, str] | None = None) -> list[int]:
    """Launch queued jobs the queue allows now: device kinds one per device, others at once."""
    reap(conn)
    launched = []
    with store.transaction(conn):
        busy: set[str] = set()
        # A job launched a moment ago is still 'queued' (with a claimed pid) until its worker starts: it
        # holds its device too, or several submits in a row would all start at once.
        for r in conn.execute("SELECT device FROM runs WHERE (status = 'running' OR (status = 'queued' AND"
                              " pid IS NOT NULL)) AND kind IN (%s)" %
                              ",".join("?" * len(DEVICE_KINDS)), tuple(DEVICE_KINDS)):
            busy |= _units(r["device"])
        queued = conn.execute("SELECT id, kind, device FROM runs WHERE status = 'queued' AND pid IS NULL"
                              " ORDER BY queue_position, id").fetchall()
        to_launch = []
        for r in queued:
            if r["kind"] in DEVICE_KINDS:
                units = _units(r["device"])
                if units & busy:
                    continue
                busy |= units
            to_launch.append(r)
        for r in to_launch:
            # Claim the row before launching so two callers never start the same job.
            conn.execute("UPDATE runs SET pid = -1 WHERE id = ?", (r["id"],))
    for r in to_launch:
        _launch(conn, r["id"], r["device"], home, extra_env)
        launched.append(r["id"])
    return launched


def _units(device: str) -> set[str]:
    """The devices a job holds: 'cpu', or one entry per GPU of 'cuda:0,1' (a multi-GPU run holds each)."""
    if device.startswith("cuda:"):
        return {f"cuda:{g.strip()}" for g in device.split(":", 1)[1].split(",") if g.strip()}
    return {device}


def _launch(conn, run_id: int, device: str, home: Path | None, extra_env: dict[str, str] | None) -> None:
    row = conn.execute("SELECT log_path FROM runs WHERE id = ?", (run_id,)).fetchone()
    log_path = Path(row["log_path"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(extra_env or {})
    env["MIRROR_HOME"] = str(config.home(home))
    env["PYTHONUNBUFFERED"] = "1"
    if device.startswith("cuda:"):
        env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    elif device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    project_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = project_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mirror_core", "_run-job", str(run_id)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=project_root)
    conn.execute("UPDATE runs SET pid = ?, pgid = ? WHERE id = ?", (proc.pid, proc.pid, run_id))
    # Reap the child when it exits so it never lingers as a zombie of the app process.
    threading.Thread(target=proc.wait, daemon=True).start()


# ---------------------------------------------------------------- the worker side

def run_job(run_id: int, home: Path | None = None) -> int:
    """Entry point of the detached process: run the handler, keep the row current, return exit code."""
    home = config.home(home)
    # stdout and stderr are the job's log: a key quoted by a provider error (or its traceback) is masked.
    if not isinstance(sys.stdout, redact.RedactingStream):
        sys.stdout = redact.RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, redact.RedactingStream):
        sys.stderr = redact.RedactingStream(sys.stderr)
    conn = store.connect(home)
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        print(f"run {run_id} does not exist", file=sys.stderr)
        return 2
    attempt_t0 = time.monotonic()  # this attempt's share of runs.elapsed_s
    conn.execute("UPDATE runs SET status = 'running', pid = ?, pgid = ?, started_at = COALESCE(started_at, ?),"
                 " heartbeat_at = ?, exit_code = NULL, error = NULL, finished_at = NULL WHERE id = ?",
                 (os.getpid(), os.getpgid(0), store.now(), store.now(), run_id))
    ctx = JobContext(run_id=run_id, kind=row["kind"], config=store.loads(row["config"]) or {}, home=home,
                     conn=conn, run_dir=config.run_dir(run_id, home))
    beat = threading.Thread(target=_heartbeat, args=(run_id, home, ctx._stop), daemon=True)
    beat.start()
    signal.signal(signal.SIGTERM, lambda *_: ctx._stop.set())
    ctx.log(f"job {run_id} ({row['kind']}) started, pid {os.getpid()}")
    status, code, error = "succeeded", 0, None
    try:
        handler = _resolve(row["kind"])
        handler(ctx)
        if ctx.should_stop():
            status, code = "cancelled", 0
    except StopRequested:
        status, code = "cancelled", 0
    except MirrorError as exc:
        status, code, error = "failed", 1, str(exc)
        traceback.print_exc()
    except BaseException as exc:  # noqa: BLE001 - the row must record every failure
        status, code, error = "failed", 1, f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    error = redact.redact(error)
    ctx.log(f"job {run_id} finished: {status}" + (f" ({error})" if error else ""))
    conn.execute("UPDATE runs SET status = ?, exit_code = ?, error = ?, finished_at = ?, heartbeat_at = ?,"
                 " elapsed_s = COALESCE(elapsed_s, 0) + ? WHERE id = ?",
                 (status, code, error, store.now(), store.now(), time.monotonic() - attempt_t0, run_id))
    ctx._stop.set()
    try:
        start_ready(conn, home)  # hand the device to the next queued job
    except Exception:  # noqa: BLE001 - the job itself is done; the next caller will launch the queue
        traceback.print_exc()
    return code


def _heartbeat(run_id: int, home: Path, stop: threading.Event) -> None:
    conn = store.connect(home, migrate=False)
    while True:
        try:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row["status"] in TERMINAL:
                if row is not None and row["status"] == "cancelled":
                    stop.set()  # stop asked through the store (e.g. from another machine)
                if stop.is_set():
                    return
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                         (store.now(), run_id))
        except sqlite3.Error:
            pass  # a busy database must not kill the job; the next beat retries
        time.sleep(HEARTBEAT_S)


def _resolve(kind: str) -> Callable[[JobContext], Any]:
    target = HANDLERS.get(kind)
    if not target:
        raise JobError(f"Unknown job kind '{kind}'.")
    mod, fn = target.split(":")
    return getattr(importlib.import_module(mod), fn)


def _sleep_handler(ctx: JobContext) -> None:
    """Test handler: counts to `steps`, one step per `interval` seconds, resumable from progress."""
    steps = int(ctx.config.get("steps", 10))
    done = ctx.conn.execute("SELECT progress_done FROM runs WHERE id = ?", (ctx.run_id,)).fetchone()[0]
    for i in range(done, steps):
        ctx.check_stop()
        time.sleep(float(ctx.config.get("interval", 0.1)))
        ctx.progress(i + 1, steps)
        ctx.log(f"step {i + 1}/{steps}")
    if ctx.config.get("fail"):
        raise RuntimeError("asked to fail")


# ---------------------------------------------------------------- controlling jobs

def get(conn: sqlite3.Connection, run_id: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"Run {run_id} does not exist; `python -m mirror_core jobs list` shows the runs.")
    return row


def _alive(pid: int | None, run_id: int) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        # Guard against pid reuse: the process must be our worker for this run.
        return b"_run-job" in args and str(run_id).encode() in args
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True


def reap(conn: sqlite3.Connection) -> list[int]:
    """Mark running (or launched) jobs whose process is gone as failed, with the log's last lines."""
    dead = []
    rows = conn.execute("SELECT * FROM runs WHERE status = 'running' OR (status = 'queued' AND pid > 0)").fetchall()
    for r in rows:
        if _alive(r["pid"], r["id"]):
            continue
        if r["status"] == "queued":
            # Launched but never reached 'running' (crashed at import); give a short grace period.
            time.sleep(0.5)
            if conn.execute("SELECT status FROM runs WHERE id = ?", (r["id"],)).fetchone()[0] != "queued":
                continue
        tail = log_tail(r["log_path"])
        conn.execute("UPDATE runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ? AND status = ?",
                     (redact.redact(f"process {r['pid']} is gone without finishing; last log lines:\n{tail}"), store.now(),
                      r["id"], r["status"]))
        dead.append(r["id"])
    return dead


def log_tail(path: str | None, lines: int = LOG_TAIL_LINES) -> str:
    if not path or not Path(path).exists():
        return "(no log)"
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64_000))
        data = f.read().decode("utf-8", "replace")
    return redact.redact("\n".join(data.splitlines()[-lines:]))


# How long a job may take to wind down after SIGTERM before SIGKILL. Training finishes its current
# optimizer step and writes a checkpoint on SIGTERM, and one step of a 135M model on a CPU takes
# tens of seconds: killing it sooner would throw away every step since the last checkpoint.
# A generate job drains its in-flight requests (no new ones, no retries) before it exits, and an API
# request may take up to its timeout (120 s by default): killing it sooner loses answers already paid for.
STOP_GRACE_S = {"train": 180.0, "loop": 180.0, "eval": 30.0, "generate": 150.0,
                "experiment": 200.0}  # the experiment stops its running child first (up to 180 s)
DEFAULT_STOP_GRACE_S = 10.0


def stop(conn: sqlite3.Connection, run_id: int, grace_s: float | None = None) -> None:
    """Stop a job: SIGTERM its process group, SIGKILL after a grace period; queued jobs are cancelled."""
    row = get(conn, run_id)
    if grace_s is None:
        grace_s = STOP_GRACE_S.get(row["kind"], DEFAULT_STOP_GRACE_S)
    if row["status"] in TERMINAL:
        return
    conn.execute("UPDATE runs SET status = 'cancelled', finished_at = ? WHERE id = ?", (store.now(), run_id))
    pgid = row["pgid"]
    if pgid and pgid > 0 and _alive(row["pid"], run_id):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.time() + grace_s
        while time.time() < deadline and _alive(row["pid"], run_id):
            time.sleep(0.1)
        try:
            os.killpg(pgid, signal.SIGKILL)  # every rank and child, even ones that ignored SIGTERM
        except ProcessLookupError:
            pass
    conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (run_id,))


def resume(conn: sqlite3.Connection, run_id: int, home: Path | None = None,
           extra_env: dict[str, str] | None = None) -> None:
    """Queue a failed or cancelled job again; its handler skips work already done.

    `extra_env` reaches the relaunched process only (e.g. an API key typed into the app)."""
    row = get(conn, run_id)
    if row["status"] == "running" and _alive(row["pid"], run_id):
        raise JobError(f"Run {run_id} is still running; stop it before resuming.")
    if row["status"] == "succeeded":
        raise JobError(f"Run {run_id} already succeeded; there is nothing to resume.")
    conn.execute("UPDATE runs SET status = 'queued', pid = NULL, pgid = NULL, exit_code = NULL, error = NULL,"
                 " finished_at = NULL WHERE id = ?", (run_id,))
    start_ready(conn, home, extra_env)


def move(conn: sqlite3.Connection, run_id: int, delta: int) -> None:
    """Reorder the queue: move a queued job `delta` places (negative = earlier)."""
    queued = [r["id"] for r in conn.execute(
        "SELECT id FROM runs WHERE status = 'queued' AND pid IS NULL ORDER BY queue_position, id")]
    if run_id not in queued:
        raise JobError(f"Run {run_id} is not waiting in the queue.")
    i = queued.index(run_id)
    queued.insert(max(0, min(len(queued) - 1, i + delta)), queued.pop(i))
    base = conn.execute("SELECT COALESCE(MIN(queue_position), 0) FROM runs WHERE status='queued'").fetchone()[0]
    with store.transaction(conn):
        for j, rid in enumerate(queued):
            conn.execute("UPDATE runs SET queue_position = ? WHERE id = ?", (base + j, rid))


def wait(conn: sqlite3.Connection, run_id: int, poll_s: float = 0.5, timeout_s: float | None = None,
         on_poll: Callable[[sqlite3.Row], None] | None = None) -> sqlite3.Row:
    """Block until the job ends (launching the queue as it frees up); returns the final row."""
    t0 = time.time()
    while True:
        row = get(conn, run_id)
        if on_poll:
            on_poll(row)
        if row["status"] in TERMINAL:
            return row
        if row["status"] == "queued" and row["pid"] is None:
            start_ready(conn)
        else:
            reap(conn)
        if timeout_s is not None and time.time() - t0 > timeout_s:
            raise JobError(f"Run {run_id} did not finish within {timeout_s:.0f} s.")
        time.sleep(poll_s)


def list_runs(conn: sqlite3.Connection, kind: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY id DESC"
    return [dict(r) for r in conn.execute(sql, (kind,) if kind else ())]
