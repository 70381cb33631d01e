"""The fast path of an import: conversion overlapped with the SQLite writes, in a helper thread or a worker process.

- `prefetched`: rows are converted in a helper thread, two batches ahead, while the caller's thread
  writes the previous batch (SQLite runs without the GIL).
- `parallel_batches`: a plain JSON Lines file of `PARALLEL_MIN_BYTES` or more is converted in a worker
  process, fed 1 MiB blocks of lines with their row numbers, while this process writes to SQLite (two
  cores busy instead of one, a few blocks in flight); rows, content hash and errors are the same as
  converting here, which is also the fallback.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Iterator

import orjson

from mirror_core.data.rows import BATCH, Converter, encode
from mirror_core.data import sources
from mirror_core.data.sources import jsonl_line_slow
from mirror_core.errors import DataImportError

# A plain JSONL file at least this large is converted in a worker process (a second core) while this one
# writes; smaller files would spend more on starting the process (~0.1-0.2 s) than they gain.
PARALLEL_MIN_BYTES = 5 * 2**20
CHUNK_BYTES = 1 << 20   # a block of lines handed to the worker (~5k typical rows)
IN_FLIGHT = 2           # blocks submitted ahead of the writes: memory stays a few blocks, whatever the file
START_INLINE = True     # convert blocks in this process while the worker starts (False: wait for it)

# The worker is a plain `python -c` child speaking pickle over its stdin/stdout, not a multiprocessing
# pool: it never imports the caller's __main__ (the app, a user's script without a __main__ guard), needs
# no fork server, semaphores or resource tracker, and is reaped (and its CPU time accounted) like any child.
_WORKER_CODE = ("import os, sys; out = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); "  # stray prints go to stderr
                "from mirror_core.data.fastpath import _worker_main; _worker_main(sys.stdin.buffer, out)")
_DEAD = object()


def _worker_main(inp, out) -> None:
    """The worker process: answer each (spec, block, first_row) with `_convert_chunk`'s result, in order."""
    import pickle
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it ends this process
    pickle.dump("ready", out, protocol=5)
    out.flush()
    while True:
        try:
            msg = pickle.load(inp)
        except EOFError:
            return
        pickle.dump(_convert_chunk(*msg), out, protocol=5)
        out.flush()


class _Worker:
    """A conversion worker process: `send` blocks to it, `get` their results in the same order.

    A writer and a reader thread move the bytes, so the caller never blocks on a pipe (it would
    otherwise wait for the worker to finish a block before it could hand over the next one)."""

    def __init__(self) -> None:
        import os
        import subprocess

        root = str(Path(__file__).resolve().parents[2])  # where `mirror_core` is importable from
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.ready = threading.Event()
        self._out: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._dead = False
        self._threads = [threading.Thread(target=self._write, name="mirror-import-send", daemon=True),
                         threading.Thread(target=self._read, name="mirror-import-recv", daemon=True)]
        for t in self._threads:
            t.start()

    def _write(self) -> None:
        import pickle

        stdin = self.proc.stdin
        try:
            while (msg := self._out.get()) is not None:
                pickle.dump(msg, stdin, protocol=5)
                stdin.flush()
        except (OSError, ValueError):  # the worker is gone; the reader reports it
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _read(self) -> None:
        import pickle

        stdout = self.proc.stdout
        try:
            if pickle.load(stdout) == "ready":
                self.ready.set()
                while True:
                    self._results.put(pickle.load(stdout))
        except Exception:  # EOF (it exited or was killed), or a broken frame
            pass
        finally:
            self.ready.set()
            self._results.put(_DEAD)

    def send(self, spec: tuple, block: tuple[bytes, int]) -> None:
        self._out.put((spec, *block))

    def get(self):
        """The next result, or None once the worker has died (the caller converts that block itself)."""
        if self._dead:
            return None
        out = self._results.get()
        if out is _DEAD:
            self._dead = True
            return None
        return out

    @property
    def alive(self) -> bool:
        return not self._dead and self.proc.poll() is None

    def close(self, *, kill: bool) -> None:
        self._out.put(None)  # the writer closes stdin: the worker exits when it has nothing left
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join()
        self.proc.stdout.close()


def _start_worker() -> _Worker | None:
    """A conversion worker process, or None where none can be started."""
    try:
        return _Worker()
    except (OSError, ValueError, RuntimeError):
        return None


def _line_blocks(path: Path, skip_lines: int, size: int) -> Iterator[tuple[bytes, int]]:
    """(block of whole lines, its first line number) for the file after its first `skip_lines` lines.

    Lines are split on b"\\n" exactly as iterating the file in binary mode does; a block ends after a
    newline, except the file's last one when the file does not end with a newline."""
    with open(path, "rb") as f:
        for _ in range(skip_lines):
            f.readline()
        row = skip_lines + 1
        parts: list[bytes] = []  # the start of a line that has no newline yet
        while True:
            data = f.read(size)
            if not data:
                break
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than `size`: read on (joined once, so long lines stay linear)
                parts.append(data)
                if sum(map(len, parts)) > sources.MAX_LINE_BYTES:
                    raise DataImportError(f"the line is longer than the limit of {sources.MAX_LINE_BYTES // 2**20} MiB "
                                          "per row; shorten or remove it", file=path.name, row=row)
                continue
            head = data if cut == len(data) else data[:cut]
            block = b"".join((*parts, head)) if parts else head
            parts = [data[cut:]] if cut < len(data) else []
            yield block, row
            row += block.count(b"\n")
        if parts:
            yield b"".join(parts), row


_WORKER_CONVERTERS: dict[tuple, Converter] = {}


def _convert_chunk(spec: tuple, block: bytes, first_row: int, conv: Converter | None = None) -> tuple:
    """Parse and convert one block of JSONL lines (in the worker; here with `conv` when it is not up).

    Returns ((rows as a JSON array for `BATCH_SQL`, their row numbers, carve ids, the converter's
    totals), None), or (None, (message, file, row, column)) for the first bad row: the same
    DataImportError the in-process path raises, rebuilt by the caller (it does not pickle as itself)."""
    if conv is None:
        conv = _WORKER_CONVERTERS.get(spec)
    if conv is None:  # in the worker: one converter per import (it keeps the gold memo between blocks)
        cols, task_type, label, split_from_source, pre_carve = spec
        _WORKER_CONVERTERS.clear()  # one import at a time per worker; keep the memo of the current one
        conv = _WORKER_CONVERTERS[spec] = Converter(dict(cols), task_type, label, split_from_source, pre_carve)
    label = conv.label
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    last_has_nl = block.endswith(b"\n")
    n = len(lines)
    batch: list[tuple] = []
    numbers: list[int] = []
    append, number, convert, loads = batch.append, numbers.append, conv.convert, orjson.loads
    conv.carve_ids = []
    conv.take_totals()
    try:
        row = first_row
        for raw in lines:
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if obj.__class__ is not dict:
                # The in-process reader sees each line with its newline (JSON error positions count it).
                full = raw + b"\n" if (row - first_row < n - 1 or last_has_nl) else raw
                obj = jsonl_line_slow(full, row, label)
                if obj is None:
                    row += 1
                    continue
            append(convert(row, obj))
            number(row)
            row += 1
        blob = encode(batch, numbers, conv.cols, label)
        if len(numbers) == n:  # no blank lines: send the row numbers as a range (cheaper to pass back)
            numbers = range(first_row, first_row + n)
    except DataImportError as e:
        return None, (str(e), e.file, e.row, e.column)
    return (blob, numbers, conv.carve_ids, conv.take_totals()), None


def _rebuilt_error(message: str, file: str | None, row: int | None, column: str | None) -> DataImportError:
    err = DataImportError(message)
    err.args = (message,)  # `message` already holds the "file ..., row ...: " prefix
    err.file, err.row, err.column = file, row, column
    return err


def parallel_batches(conv: Converter, head: list[tuple[int, dict]], path: Path) -> Iterator[tuple]:
    """(JSON rows, row numbers, carve ids) in file order: the detection sample converted here, then the
    rest of `path` converted in a worker process, `IN_FLIGHT` blocks ahead of the caller's writes.

    Until the worker is up (a tenth of a second or so) blocks are converted here, so its start costs
    little. Where no worker can be started (or it dies), the remaining blocks are converted here too:
    same rows, same hash, same errors. Every block's hash and split totals are folded into `conv` before
    its rows are handed out."""
    spec = (tuple(conv.cols.items()), conv.task_type, conv.label, conv.split_from_source, conv.pre_carve)
    local = Converter(conv.cols, conv.task_type, conv.label, conv.split_from_source, conv.pre_carve)  # done here
    blocks = _line_blocks(path, head[-1][0], CHUNK_BYTES)
    worker = _start_worker()
    pending: deque = deque()  # (block, sent to the worker?), in file order
    finished = False
    try:
        for batch, numbers, carve in conv.batches((head,), BATCH):
            yield encode(batch, numbers, conv.cols, conv.label), numbers, carve
        if worker is not None and not START_INLINE:
            worker.ready.wait()
        while True:
            if worker is not None and worker.ready.is_set() and worker.alive:
                while len(pending) < IN_FLIGHT and (block := next(blocks, None)) is not None:
                    worker.send(spec, block)
                    pending.append((block, True))
            if pending:
                block, sent = pending.popleft()
            else:
                block, sent = next(blocks, None), False
                if block is None:
                    break
            out = worker.get() if sent else None
            if out is None:  # not sent, or the worker died (killed, out of memory): convert it here
                out = _convert_chunk(spec, *block, conv=local)
            done, error = out
            if error is not None:
                raise _rebuilt_error(*error)
            blob, numbers, carve, totals = done
            conv.add_totals(totals)
            yield blob, numbers, carve
        finished = True
    finally:
        blocks.close()
        if worker is not None:
            worker.close(kill=not finished)


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
