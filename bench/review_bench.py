"""Review speed: seed 100k CoTs + 300k self-evaluations, time filter changes with the page render
(AppTest), full-text searches, and check memory does not grow with the store.

Targets (issue 4): <= 300 ms per filter change (query + render), <= 100 ms per search (each one, count +
first page, including a word found in every CoT),
memory independent of store size (compared against a 10x smaller store in the same run).
Usage: .venv/bin/python bench/review_bench.py [--cots 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGE = str(ROOT / "pages" / "3_Review.py")


def build(home: Path, cots: int) -> float:
    from mirror_core import store
    from mirror_core.review import seed

    os.environ["MIRROR_HOME"] = str(home)
    conn = store.connect(home)
    t = time.perf_counter()
    seed.seed(conn, questions=cots // 4, cots_per_question=4, evals_per_cot=3,
              teachers=("fake", "local", "openai:gpt-4o-mini"), batch=20000)
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - t


# (widget kind, key, value): each step is one filter change a reviewer makes
STEPS = [("selectbox", "f_correct", "no"), ("selectbox", "f_teacher", "local"),
         ("selectbox", "f_verdict", "any_wrong"), ("checkbox", "f_vvg", True),
         ("selectbox", "f_teacher", ""), ("selectbox", "f_split", "dev"), ("checkbox", "f_disagree", True),
         ("selectbox", "f_sort", "most_wrong_verdicts"), ("selectbox", "f_split", ""),
         ("checkbox", "f_vvg", False), ("selectbox", "f_correct", ""), ("checkbox", "f_disagree", False),
         ("selectbox", "f_status", "active"), ("selectbox", "f_sort", "question")]


def time_filter_changes(home: Path) -> list[float]:
    from streamlit.testing.v1 import AppTest

    os.environ["MIRROR_HOME"] = str(home)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    out = []
    for kind, key, value in STEPS:
        widget = getattr(at, kind)(key=key)
        widget.set_value(value)
        t = time.perf_counter()
        at.run()
        out.append(time.perf_counter() - t)
        assert not at.exception, at.exception
    return out


def time_searches(home: Path) -> list[tuple[str, float, int]]:
    from mirror_core import store
    from mirror_core.review import queries
    from mirror_core.review.filters import ReviewFilter

    conn = store.connect(home)
    out = []
    # rare, narrow, a phrase in 62% of CoTs, a prefix, three words, and a word in every CoT
    for q in ["quokka", "marbles Zoe", '"final step"', "stick*", "Omar shells 17", "the"]:
        f = ReviewFilter(q=q)
        queries.count(conn, f)  # warm the page cache once per term
        t = time.perf_counter()
        n = queries.count(conn, f)["cots"]
        queries.question_ids(conn, f, limit=1)
        out.append((q, time.perf_counter() - t, n))
    conn.close()
    return out


def time_page_searches(home: Path) -> list[tuple[str, float]]:
    """A search typed into the page: its query, counts per filter and render (AppTest)."""
    from streamlit.testing.v1 import AppTest

    os.environ["MIRROR_HOME"] = str(home)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    out = []
    for q in ["marbles Zoe", "Nina cookies", "stick*", '"final step"', "the"]:
        at.text_input(key="f_q").set_value(q)
        t = time.perf_counter()
        at.run()
        out.append((q, time.perf_counter() - t))
        assert not at.exception, at.exception
    return out


def render_memory(home: Path) -> int:
    """Peak Python allocation (bytes) of one filter change + render, after a warm-up render."""
    from streamlit.testing.v1 import AppTest

    os.environ["MIRROR_HOME"] = str(home)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="f_correct").set_value("yes").run()
    at.selectbox(key="f_correct").set_value("no")
    tracemalloc.start()
    at.run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cots", type=int, default=100_000)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        seed_s = build(big, args.cots)
        build(small, max(1000, args.cots // 10))
        from mirror_core import store

        c = store.connect(big)
        counts = store.counts(c)
        c.close()
        print(f"seeded {counts['rationales']:,} CoTs, {counts['self_evals']:,} self-evaluations, "
              f"{counts['examples']:,} questions in {seed_s:.1f} s")

        changes = time_filter_changes(big)
        med, worst = statistics.median(changes), max(changes)
        print(f"filter change + render (AppTest), {len(changes)} changes: median {med * 1000:.0f} ms, "
              f"max {worst * 1000:.0f} ms  (target <= 300 ms) {'OK' if med <= 0.3 else 'MISSED'}")
        for (kind, key, value), s in zip(STEPS, changes):
            print(f"    {key}={value!r:24} {s * 1000:6.0f} ms")

        searches = time_searches(big)
        smed = statistics.median(s for _, s, _ in searches)
        smax = max(s for _, s, _ in searches)
        print(f"full-text search (count + first page): median {smed * 1000:.1f} ms, "
              f"max {smax * 1000:.1f} ms  (target: every search <= 100 ms) "
              f"{'OK' if smax <= 0.1 else 'MISSED'}")
        for q, s, n in searches:
            print(f"    {q!r:18} {s * 1000:6.1f} ms  {n:,} CoTs")

        for q, s in time_page_searches(big):
            print(f"    page search {q!r:16} {s * 1000:6.0f} ms (query + counts + render)")

        m_big, m_small = render_memory(big), render_memory(small)
        ratio = m_big / m_small
        print(f"peak Python memory of one filter change + render: {m_big / 1e6:.1f} MB at {args.cots:,} CoTs vs "
              f"{m_small / 1e6:.1f} MB at {max(1000, args.cots // 10):,} CoTs (ratio {ratio:.2f}; "
              f"target: independent of size) {'OK' if ratio < 1.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
