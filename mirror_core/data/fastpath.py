"""The fast path of an import: records are converted in a helper thread while this thread writes to SQLite.

`prefetched` runs the conversion (reading, orjson, checks, hashing: Python, holding the GIL) two batches
ahead in a helper thread, while the caller's thread runs the batch INSERT, during which SQLite releases
the GIL. The import uses it for any source longer than the detection sample.

What it buys and costs, measured at commit 8d5026c (the worker process below still in) with
`bench/import_bench.py --rows 100000 --methods ours,ours-inprocess,ours-serial,pandas --repeat 3`
(GSM-like JSONL, 5.2 and 20.7 MB; `ours-inprocess` is this thread alone) on the development machine:
2 cores shared with a training job, load average 10-13, so wall times are noisy; medians of three
interleaved runs, thread vs no thread:
- Gain: none that the benchmark can show under that load: 18.7 s with the thread vs 18.6 s without
  (`ours-serial`) at 100k rows, 3.8 vs 4.3 s at 25k. The batch INSERTs are 42% of a serial import's CPU
  time (0.83 of 1.97 s at 100k rows), the part the thread overlaps, so on a free second core the
  ceiling is ~1.7x; rerun `--methods ours,ours-serial` on a quiet machine to see it or drop the thread.
  Rerun after the worker went (268b7eb, `--rows 100000 --methods ours,ours-serial --repeat 3`, load 7-9):
  16.6 vs 17.9 s at 100k rows, 4.6 vs 4.8 s at 25k, CPU 2.24 vs 2.37 s; a single 200k run at load ~7
  went the other way (33.3 vs 28.1 s). Within the noise either way.
- Cost: one daemon thread and ~50 lines here; CPU time the same (2.66 vs 2.72 s at 100k rows); peak
  memory ~3 MB more (two converted batches of `rows.BATCH` rows in flight; 40 MB growth at 100k rows).

A worker *process* converting 1 MiB blocks of a JSONL file of 5 MiB or more (~310 lines: a pickle
protocol over pipes, two I/O threads, a fallback when it died) was removed after the same runs: it did
not beat this thread by a clear margin (worker vs thread: 18.3 vs 18.7 s at 100k rows, 5.3 vs 3.8 s at
25k; an earlier run at load 15-18: 13.9 vs 12.9 s at 100k, 12.0 vs 10.5 s at 50k) at about the same CPU
time, and on two cores it cannot do much better: it overlaps the same conversion with the same GIL-free
INSERTs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Iterator


@contextlib.contextmanager
def prefetched(items: Iterator, depth: int = 2) -> Iterator[Iterator]:
    """Iterate `items` in a helper thread, `depth` items ahead; yields an iterator over them.

    Exceptions raised while producing are re-raised in the caller's thread. Leaving the block early
    (e.g. the caller failed) stops the helper and closes `items` (so its file is closed).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(msg) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer
            put((False, exc))
        finally:
            items.close()

    def consume() -> Iterator:
        while True:
            ok, value = q.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value

    worker = threading.Thread(target=produce, name="mirror-import-convert", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
