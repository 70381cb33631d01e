"""A large JSONL file is converted in a worker process while this one writes: same rows, same content
hash and the same errors (file, row, column) as the in-process path, and nothing written on failure."""

from __future__ import annotations

import json

import pytest

from mirror_core import store
from mirror_core.data import fastpath
from mirror_core.data.importing import import_source
from mirror_core.data.mapping import ColumnMap
from mirror_core.data.rows import DEV_FRACTION, bucket
from mirror_core.errors import DataImportError


@pytest.fixture
def worker_path(monkeypatch):
    """Send every file down the worker-process path, in small blocks (many of them), and count the
    blocks the worker process really converted."""
    monkeypatch.setattr(fastpath, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(fastpath, "START_INLINE", False)  # wait for the worker: every block goes there
    seen = {"pools": 0, "blocks": 0}
    real = fastpath._start_worker

    def spy():
        worker = real()
        if worker is not None:
            seen["pools"] += 1
            send = worker.send

            def counting(*args):
                seen["blocks"] += 1
                return send(*args)

            worker.send = counting
        return worker

    monkeypatch.setattr(fastpath, "_start_worker", spy)
    return seen


def rows_of(conn, ds_id):
    return [tuple(r) for r in conn.execute(
        "SELECT ext_id, split, question, choices, answer, rationale, task_type, meta FROM examples "
        "WHERE dataset_id = ? ORDER BY id", (ds_id,))]


def snapshot(conn):
    return (conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0],
            [tuple(r) for r in conn.execute("SELECT id, name, content_hash FROM datasets ORDER BY id")])


def mixed_lines(n):
    """JSONL text exercising the reader: CRLF and blank lines, extra columns (meta), numbers as ids,
    GSM-style '#### N' answers, non-ASCII text, and no newline after the last line."""
    lines = []
    for i in range(n):
        rec = {"id": i if i % 7 else f"x{i}", "question": f"Über {i} + {i}? ✓", "answer": f"{2 * i}\n#### {2 * i:,}",
               "split": ["train", "test", "train", "validation"][i % 4]}
        if i % 5 == 0:
            rec["source"] = {"page": i}
        lines.append(json.dumps(rec, ensure_ascii=i % 2 == 0) + ("\r" if i % 11 == 0 else ""))
        if i % 97 == 0:
            lines.append("   ")
    return "\n".join(lines)  # no final newline


def import_both(tmp_path, monkeypatch, text, name="data.jsonl", **kw):
    """Import `text` in-process (fresh home) and through the worker (another fresh home)."""
    f = tmp_path / name
    f.write_bytes(text.encode("utf-8"))
    out = []
    for parallel in (False, True):
        home = tmp_path / f"home{int(parallel)}"
        conn = store.connect(home)
        with monkeypatch.context() as m:
            m.setattr(fastpath, "PARALLEL_MIN_BYTES", 0 if parallel else 10**12)
            r = import_source(conn, str(f), **kw)
        out.append((r, rows_of(conn, r.dataset_id)))
        conn.close()
    return out


def test_worker_gives_identical_rows_and_hash(tmp_path, monkeypatch, worker_path):
    monkeypatch.setattr(fastpath, "PARALLEL_MIN_BYTES", 10**12)  # the first import stays in-process
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(mixed_lines(3000).encode("utf-8"))
    results = []
    for parallel in (False, True):
        conn = store.connect(tmp_path / f"home{int(parallel)}")
        if parallel:
            monkeypatch.setattr(fastpath, "PARALLEL_MIN_BYTES", 0)
        r = import_source(conn, str(f))
        results.append((r.content_hash, r.counts, r.task_type, rows_of(conn, r.dataset_id)))
        conn.close()
    assert worker_path["pools"] == 1 and worker_path["blocks"] > 20
    assert results[0] == results[1]
    h, counts, task_type, rows = results[1]
    assert len(rows) == 3000 and counts == {"train": 1500, "dev": 750, "test": 750} and task_type == "numeric"
    assert rows[2999][0] == "2999" and rows[2999][4] == "5998"  # the last line, without a newline
    assert json.loads(rows[5][7]) == {"source": {"page": 5}}


def test_worker_dev_carve_and_tiny_train_fallback(tmp_path, monkeypatch, worker_path):
    """Totals from the worker's blocks fold into the hash and the dev carve exactly as in-process."""
    rows = [{"id": f"c{i}", "question": f"q{i}", "answer": str(i), "split": ["train", "test"][i % 2]}
            for i in range(2500)]
    (a, rows_a), (b, rows_b) = import_both(tmp_path, monkeypatch, "".join(json.dumps(r) + "\n" for r in rows))
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b) and a.counts["dev"] > 50
    # Only two train rows, both in the worker's part of the file and neither below the carve bucket:
    # the one with the smallest bucket moves to dev (the fallback carve).
    ids = [f"t{i}" for i in range(5000) if bucket(f"t{i}") >= DEV_FRACTION][:1500]
    rows = [{"id": x, "question": f"q {x}", "answer": "7", "split": "test"} for x in ids]
    rows[1200]["split"] = rows[1400]["split"] = "train"
    (tmp_path / "tiny").mkdir()
    (a, rows_a), (b, rows_b) = import_both(tmp_path / "tiny", monkeypatch, "".join(json.dumps(r) + "\n" for r in rows),
                                           name="tiny_train.jsonl")
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b)
    assert a.counts == {"train": 1, "dev": 1, "test": 1498}
    assert worker_path["pools"] == 2


def test_dev_rows_after_the_sample_put_pre_carved_rows_back(tmp_path, monkeypatch, worker_path):
    """Without dev rows in the sample, rows a carve would move are written as dev at once; a dev row later
    (or a single train row) means no carve, and they must end up as train, with the hash of no carve."""
    import hashlib

    rows = [{"id": f"p{i}", "question": f"q{i}", "answer": str(i), "split": "train"} for i in range(2500)]
    rows[2300]["split"] = "dev"
    (a, rows_a), (b, rows_b) = import_both(tmp_path, monkeypatch, "".join(json.dumps(r) + "\n" for r in rows))
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b)
    assert a.counts == {"train": 2499, "dev": 1, "test": 0} and [r[1] for r in rows_b] == [r["split"] for r in rows]
    acc = sum(int.from_bytes(hashlib.sha256(repr((r["id"], r["question"], None, r["answer"], None, "numeric")).encode()
                                            + b"\x00" + r["split"].encode()).digest(), "big") for r in rows)
    assert b.content_hash == hashlib.sha256(f"{len(rows)}:{acc % 2**256:064x}".encode()).hexdigest()
    # One train row (one the carve rule would move), after the sample: too few to carve from.
    low = next(f"s{i}" for i in range(100) if bucket(f"s{i}") < DEV_FRACTION)
    rows = [{"id": f"u{i}", "question": f"q{i}", "answer": "1", "split": "test"} for i in range(1500)]
    rows[1400] = {"id": low, "question": "q", "answer": "1", "split": "train"}
    (tmp_path / "one").mkdir()
    (a, rows_a), (b, rows_b) = import_both(tmp_path / "one", monkeypatch, "".join(json.dumps(r) + "\n" for r in rows))
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b)
    assert a.counts == {"train": 1, "dev": 0, "test": 1499}


def bad_files():
    """(name, text, expected message) for each kind of bad row, all past the detection sample."""
    def lines(n=2500, **over):
        out = [json.dumps({"id": i, "question": f"q{i}", "answer": str(i), "split": "train"}) for i in range(1, n + 1)]
        for row, text in over.items():
            out[int(row[1:]) - 1] = text
        return "\n".join(out) + "\n"

    yield "json.jsonl", lines(r2000='{"id": 2000, "question": "q2000", "answer": 2000'), \
        r"file json.jsonl, row 2000: invalid JSON \(Expecting ',' delimiter"
    yield "gold.jsonl", lines(r1800=json.dumps({"id": 1800, "question": "q", "answer": "about a dozen"})), \
        r"file gold.jsonl, row 1800, column 'answer': the gold answer does not parse as numeric"
    yield "split.jsonl", lines(r2100=json.dumps({"id": 2100, "question": "q", "answer": "1", "split": "holdout"})), \
        r"file split.jsonl, row 2100, column 'split': split 'holdout'"
    yield "dup.jsonl", lines(r2400=json.dumps({"id": 17, "question": "q", "answer": "1", "split": "train"})), \
        r"file dup.jsonl, row 2400, column 'id': duplicate id '17'"
    yield "list.jsonl", lines(r1500="[1, 2]"), r"file list.jsonl, row 1500: each line must be a JSON object, found list"
    yield "surrogate.jsonl", lines(r2201='{"id": 2201, "question": "\\ud800 q", "answer": "1", "split": "train"}'), \
        r"file surrogate.jsonl, row 2201, column 'question': the text is not valid Unicode"
    yield "empty_q.jsonl", lines(r1999='{"id": 1999, "question": " ", "answer": "1"}'), \
        r"file empty_q.jsonl, row 1999, column 'question': the question is empty"


@pytest.mark.parametrize("name,text,message", list(bad_files()), ids=[b[0] for b in bad_files()])
def test_worker_errors_match_in_process(conn, tmp_path, monkeypatch, worker_path, name, text, message):
    import_source(conn, str(_write(tmp_path / "existing.jsonl", "".join(
        json.dumps({"id": i, "question": f"e{i}", "answer": i}) + "\n" for i in range(20)))))
    before = snapshot(conn)
    f = _write(tmp_path / name, text)
    errors = []
    for threshold in (10**12, 0):  # in-process, then the worker
        monkeypatch.setattr(fastpath, "PARALLEL_MIN_BYTES", threshold)
        with pytest.raises(DataImportError, match=message) as e:
            import_source(conn, str(f))
        errors.append((str(e.value), e.value.file, e.value.row, e.value.column))
        assert snapshot(conn) == before
    assert errors[0] == errors[1]
    assert worker_path["pools"] == 1 and worker_path["blocks"] >= 1


def test_bad_encoding_past_the_sample(conn, tmp_path, monkeypatch, worker_path):
    text = "".join(json.dumps({"question": f"q{i}", "answer": i}) + "\n" for i in range(1, 1600)) \
        + '{"question": "Combien coûte un café?", "answer": 3}\n'
    f = tmp_path / "latin.jsonl"
    f.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataImportError, match=r"file latin.jsonl, row 1600: the file is not UTF-8 .*0xfb"):
        import_source(conn, str(f))
    assert snapshot(conn) == (0, [])


def test_no_worker_process_converts_here(tmp_path, monkeypatch):
    """Where no process can be started, the same import runs in this process with the same result."""
    rows = "".join(json.dumps({"id": i, "question": f"q{i}", "answer": i}) + "\n" for i in range(2000))
    monkeypatch.setattr(fastpath, "_start_worker", lambda: None)
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 4096)
    (a, rows_a), (b, rows_b) = import_both(tmp_path, monkeypatch, rows, columns=ColumnMap(id="id"))
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b) and a.rows == 2000


def test_worker_killed_midway_the_rest_is_converted_here(tmp_path, monkeypatch):
    rows = "".join(json.dumps({"id": i, "question": f"q{i}", "answer": i, "split": ["train", "test"][i % 2]}) + "\n"
                   for i in range(4000))
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(fastpath, "START_INLINE", False)
    real, sent = fastpath._start_worker, []

    def spy():
        worker = real()
        send = worker.send

        def send_then_die(*args):
            send(*args)
            sent.append(1)
            if len(sent) == 5:
                worker.proc.kill()

        worker.send = send_then_die
        return worker

    monkeypatch.setattr(fastpath, "_start_worker", spy)
    (a, rows_a), (b, rows_b) = import_both(tmp_path, monkeypatch, rows)
    assert (a.content_hash, a.counts, rows_a) == (b.content_hash, b.counts, rows_b) and b.rows == 4000
    assert len(sent) >= 5


def test_small_files_stay_in_process(conn, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(fastpath, "_start_worker", lambda: started.append(1))
    f = _write(tmp_path / "small.jsonl", "".join(json.dumps({"question": f"q{i}", "answer": i}) + "\n"
                                                 for i in range(3000)))
    assert f.stat().st_size < fastpath.PARALLEL_MIN_BYTES
    assert import_source(conn, str(f)).rows == 3000 and started == []


def test_line_blocks_split_like_file_iteration(tmp_path):
    data = b"a\r\nbb\n\n" + b"c" * 10000 + b"\nd\ne"
    f = tmp_path / "x.jsonl"
    f.write_bytes(data)
    with open(f, "rb") as fh:
        expected = list(enumerate(fh, 1))
    for skip in (0, 2, 4):
        got = []
        for block, first in fastpath._line_blocks(f, skip, 64):
            parts = block.split(b"\n")
            parts = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
            got.extend(enumerate(parts, first))
        assert got == expected[skip:]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path
