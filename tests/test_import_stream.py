"""A source longer than the detection sample: rows past it are converted in batches in a helper thread
while this thread writes (`fastpath.prefetched`). Same reading, splits, content hash and errors (file,
row, column) as in the first rows, whatever the batch size, and nothing written on failure."""

from __future__ import annotations

import hashlib
import json

import pytest

from mirror_core import store
from mirror_core.data import rows as data_rows
from mirror_core.data.importing import import_source
from mirror_core.data.rows import DEV_FRACTION, bucket
from mirror_core.errors import DataImportError


@pytest.fixture
def small_batches(monkeypatch):
    """Many batches (a few rows each), so rows cross batch boundaries and the helper thread's queue."""
    monkeypatch.setattr(data_rows, "BATCH", 300)


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


def import_fresh(tmp_path, home, f, **kw):
    conn = store.connect(tmp_path / home)
    r = import_source(conn, str(f), **kw)
    out = r, rows_of(conn, r.dataset_id)
    conn.close()
    return out


def test_rows_past_the_sample_and_the_batch_size_changes_nothing(tmp_path, monkeypatch):
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(mixed_lines(3000).encode("utf-8"))
    r, got = import_fresh(tmp_path, "one_batch", f)
    monkeypatch.setattr(data_rows, "BATCH", 300)
    r_small, got_small = import_fresh(tmp_path, "ten_batches", f)
    assert (r_small.content_hash, r_small.counts, got_small) == (r.content_hash, r.counts, got)
    assert len(got) == 3000 and r.counts == {"train": 1500, "dev": 750, "test": 750} and r.task_type == "numeric"
    assert got[2999][0] == "2999" and got[2999][4] == "5998"  # the last line, without a newline
    assert got[2998][2] == "Über 2998 + 2998? ✓" and got[2998][5] == "5996"  # steps before #### as rationale
    assert json.loads(got[5][7]) == {"source": {"page": 5}} and got[6][7] is None


def test_dev_carve_and_tiny_train_fallback_past_the_sample(conn, tmp_path, small_batches):
    rows = [{"id": f"c{i}", "question": f"q{i}", "answer": str(i), "split": ["train", "test"][i % 2]}
            for i in range(2500)]
    r = import_source(conn, str(_write(tmp_path / "carve.jsonl", rows)))
    dev = {x[0] for x in rows_of(conn, r.dataset_id) if x[1] == "dev"}
    assert dev == {f"c{i}" for i in range(0, 2500, 2) if bucket(f"c{i}") < DEV_FRACTION} and len(dev) > 50
    # Only two train rows, both past the sample and neither below the carve bucket: the one with the
    # smaller bucket moves to dev (the fallback carve).
    ids = [f"t{i}" for i in range(5000) if bucket(f"t{i}") >= DEV_FRACTION][:1500]
    rows = [{"id": x, "question": f"q {x}", "answer": "7", "split": "test"} for x in ids]
    rows[1200]["split"] = rows[1400]["split"] = "train"
    r = import_source(conn, str(_write(tmp_path / "tiny_train.jsonl", rows)))
    assert r.counts == {"train": 1, "dev": 1, "test": 1498}
    moved = min((ids[1200], ids[1400]), key=bucket)
    assert conn.execute("SELECT ext_id FROM examples WHERE dataset_id = ? AND split = 'dev'",
                        (r.dataset_id,)).fetchone()[0] == moved


def test_dev_rows_after_the_sample_put_pre_carved_rows_back(conn, tmp_path, small_batches):
    """Without dev rows in the sample, rows a carve would move are written as dev at once; a dev row later
    (or a single train row) means no carve, and they must end up as train, with the hash of no carve."""
    rows = [{"id": f"p{i}", "question": f"q{i}", "answer": str(i), "split": "train"} for i in range(2500)]
    rows[2300]["split"] = "dev"
    r = import_source(conn, str(_write(tmp_path / "late_dev.jsonl", rows)))
    assert r.counts == {"train": 2499, "dev": 1, "test": 0}
    assert [x[1] for x in rows_of(conn, r.dataset_id)] == [x["split"] for x in rows]
    acc = sum(int.from_bytes(hashlib.sha256(repr((x["id"], x["question"], None, x["answer"], None, "numeric")).encode()
                                            + b"\x00" + x["split"].encode()).digest(), "big") for x in rows)
    assert r.content_hash == hashlib.sha256(f"{len(rows)}:{acc % 2**256:064x}".encode()).hexdigest()
    # One train row (one the carve rule would move), after the sample: too few to carve from.
    low = next(f"s{i}" for i in range(100) if bucket(f"s{i}") < DEV_FRACTION)
    rows = [{"id": f"u{i}", "question": f"q{i}", "answer": "1", "split": "test"} for i in range(1500)]
    rows[1400] = {"id": low, "question": "q", "answer": "1", "split": "train"}
    r = import_source(conn, str(_write(tmp_path / "one_train.jsonl", rows)))
    assert r.counts == {"train": 1, "dev": 0, "test": 1499}


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
def test_errors_past_the_sample_name_the_row_and_write_nothing(conn, tmp_path, small_batches, name, text, message):
    import_source(conn, str(_write(tmp_path / "existing.jsonl", [
        {"id": i, "question": f"e{i}", "answer": i} for i in range(20)])))
    before = snapshot(conn)
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(DataImportError, match=message):
        import_source(conn, str(f))
    assert snapshot(conn) == before


def test_bad_encoding_past_the_sample(conn, tmp_path):
    text = "".join(json.dumps({"question": f"q{i}", "answer": i}) + "\n" for i in range(1, 1600)) \
        + '{"question": "Combien coûte un café?", "answer": 3}\n'
    f = tmp_path / "latin.jsonl"
    f.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataImportError, match=r"file latin.jsonl, row 1600: the file is not UTF-8 .*0xfb"):
        import_source(conn, str(f))
    assert snapshot(conn) == (0, [])


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
