"""Import benchmark: our streaming importer vs pandas `read_json(lines=True)` + `to_sql`, in the same run.

Makes a JSONL file of N rows (default 200,000; GSM-like question, numeric gold, rationale, split), then
imports it with each method in its own subprocess and reports rows/s, CPU time and peak memory. Ours
converts rows in a helper thread while it writes to SQLite (see `fastpath.prefetched`). Peak memory is the
child's own `ru_maxrss`; "growth" is the peak minus the peak before the import started (after imports
of libraries), i.e. what the import itself needed. Both are also run at N/4 rows to show how memory
scales with the file size: ours should stay flat, pandas grows with the file.

    .venv/bin/python bench/import_bench.py [--rows 200000] [--methods ours,pandas] [--repeat 1]

`--methods ours,ours-serial --repeat 3` compares the importer with and without its helper thread in one
run (interleaved, so a background load hits them alike).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_file(path: Path, rows: int) -> None:
    rng = random.Random(0)
    names = ["Janet", "Tom", "Aisha", "Wei", "Carlos", "Priya"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            a, b, c = rng.randint(2, 999), rng.randint(2, 99), rng.randint(1, 50)
            name = rng.choice(names)
            f.write(json.dumps({
                "id": f"b{i}",
                "question": f"{name} has {a:,} marbles and buys {b} bags of {c} more. How many marbles now?",
                "answer": f"{a + b * c:,}",
                "rationale": f"{name} buys {b} * {c} = {b * c} marbles. In total {a} + {b * c} = {a + b * c}.",
                "split": "test" if i % 10 == 0 else "train",
            }) + "\n")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_s() -> float:
    """CPU seconds of this process (all threads) and of its finished child processes, user + system."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def _use_path(method: str) -> None:
    """Pin the importer to one conversion path (for `--methods`; `ours` is the importer as shipped)."""
    import contextlib

    from mirror_core.data import fastpath

    if method == "ours-serial":
        fastpath.prefetched = lambda items, depth=2: contextlib.nullcontext(items)


def worker(method: str, path: str, home: str) -> None:
    if method.startswith("ours"):
        from mirror_core import store
        from mirror_core.data.importing import import_source

        _use_path(method)
        conn = store.connect(home)
        base = _maxrss_mb()
        c0, t0 = _cpu_s(), time.perf_counter()
        result = import_source(conn, path, name="bench")
        elapsed, cpu = time.perf_counter() - t0, _cpu_s() - c0
        rows = result.rows
    else:
        import sqlite3

        import pandas as pd

        conn = sqlite3.connect(Path(home) / "baseline.sqlite3")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        base = _maxrss_mb()
        c0, t0 = _cpu_s(), time.perf_counter()
        df = pd.read_json(path, lines=True, dtype=False)
        df.to_sql("examples", conn, if_exists="append", index=False)
        conn.commit()
        elapsed, cpu = time.perf_counter() - t0, _cpu_s() - c0
        rows = conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0]
    print(json.dumps({"rows": rows, "seconds": elapsed, "cpu_s": cpu, "peak_mb": _maxrss_mb(), "base_mb": base}))


def run(method: str, path: Path, tmp: Path) -> dict:
    home = tempfile.mkdtemp(dir=tmp, prefix=f"{method}-")
    env = {**os.environ, "MIRROR_HOME": home, "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    out = subprocess.run([sys.executable, __file__, "--worker", method, str(path), home], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


METHODS = {
    "ours": "the importer as shipped",
    "ours-serial": "ours converting and writing in one thread",
    "pandas": "pandas read_json(lines=True) + to_sql",
}


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--methods", default="ours,pandas",
                    help="comma-separated, in run order: " + "; ".join(f"{k}: {v}" for k, v in METHODS.items()))
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each method per size, interleaved; the median run (by wall time) is compared")
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "FILE", "HOME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    methods = args.methods.split(",")
    if unknown := [m for m in methods if m not in METHODS]:
        ap.error(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory(prefix="import-bench-") as d:
        tmp = Path(d)
        results: dict[tuple[str, int], list[dict]] = {}
        for n in (args.rows // 4, args.rows):
            path = tmp / f"rows{n}.jsonl"
            make_file(path, n)
            size_mb = path.stat().st_size / 2**20
            for _ in range(args.repeat):
                for method in methods:
                    r = run(method, path, tmp)
                    assert r["rows"] == n, r
                    results.setdefault((method, n), []).append(r)
                    print(f"{method:14} {n:>8,} rows ({size_mb:6.1f} MB): {n / r['seconds']:>10,.0f} rows/s  "
                          f"{r['seconds']:6.2f} s (CPU {r['cpu_s']:5.2f} s)  peak RSS {r['peak_mb']:7.1f} MB  "
                          f"growth {r['peak_mb'] - r['base_mb']:7.1f} MB"
                          + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
        n = args.rows
        med = {key: _median_run(runs) for key, runs in results.items()}
        grow = lambda r: r["peak_mb"] - r["base_mb"]  # noqa: E731
        which = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
        if "ours" in methods and "pandas" in methods:
            ours, pand = med[("ours", n)], med[("pandas", n)]
            print(f"\nspeed ours/pandas at {n:,} rows ({which}): {pand['seconds'] / ours['seconds']:.2f}x "
                  f"(>= 1.0 means at least as fast); CPU time pandas/ours {pand['cpu_s'] / ours['cpu_s']:.2f}x")
            print(f"peak RSS ours/pandas: {ours['peak_mb'] / pand['peak_mb']:.2f}x; "
                  f"import growth ours {grow(ours):.1f} MB vs pandas {grow(pand):.1f} MB")
            print(f"memory vs file size (x4 rows): ours growth {grow(med[('ours', n // 4)]):.1f} -> {grow(ours):.1f} MB, "
                  f"pandas {grow(med[('pandas', n // 4)]):.1f} -> {grow(pand):.1f} MB")
        if "ours" in methods:
            for other in (m for m in methods if m.startswith("ours-")):
                for size in (n // 4, n):
                    a, b = med[("ours", size)], med[(other, size)]
                    print(f"{other} vs ours at {size:,} rows ({which}): wall {b['seconds']:.2f} vs {a['seconds']:.2f} s "
                          f"({b['seconds'] / a['seconds']:.2f}x), CPU {b['cpu_s']:.2f} vs {a['cpu_s']:.2f} s")


if __name__ == "__main__":
    main()
