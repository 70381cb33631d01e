"""File and Hugging Face import: formats, mapping, detection, splits, dedupe, and every bad input."""

from __future__ import annotations

import csv
import json
import random

import pytest

from mirror_core.data import rows as data_rows
from mirror_core.data.importing import import_source
from mirror_core.data.mapping import ColumnMap
from mirror_core.data.queries import count_examples, list_datasets, page_examples
from mirror_core.errors import DataImportError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def math_rows(n, splits=("train", "test")):
    return [{"uid": f"q{i}", "problem": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}\n#### {2 * i:,}",
             "part": splits[i % len(splits)]} for i in range(n)]


def snapshot(conn):
    """Everything an import could touch, to prove a failed one left no trace."""
    return (conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0],
            [tuple(r) for r in conn.execute("SELECT id, name, content_hash FROM datasets ORDER BY id")])


def test_jsonl_with_mapping_detects_numeric_and_carves_dev(conn, tmp_path):
    f = write_jsonl(tmp_path / "arith.jsonl", math_rows(200))
    r = import_source(conn, str(f), columns=ColumnMap(id="uid", question="problem", answer="solution", split="part"))
    assert (r.name, r.task_type, r.rows) == ("arith", "numeric", 200)
    assert r.counts["test"] == 100 and r.counts["dev"] > 0 and r.counts["train"] + r.counts["dev"] == 100
    assert any("moved" in n for n in r.notes)
    row = conn.execute("SELECT * FROM examples WHERE ext_id = 'q50'").fetchone()
    # "#### 100" is the gold; the steps before it become the gold rationale.
    assert (row["answer"], row["rationale"]) == ("100", "50 + 50 = 100")
    # The carve is a seeded rule on the id: the same rows land in dev every time.
    dev1 = {x[0] for x in conn.execute("SELECT ext_id FROM examples WHERE split = 'dev'")}
    assert dev1 == {f"q{i}" for i in range(0, 200, 2) if data_rows.bucket(f"q{i}") < data_rows.DEV_FRACTION}


def test_csv_multiple_choice_with_letters_texts_and_indexes(conn, tmp_path):
    f = tmp_path / "mc.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "options", "answerKey", "split"])
        w.writerow(["Where do you keep money?", "bank|library|mall", "A", "train"])
        w.writerow(["Where do you borrow books?", "bank|library|mall", "library", "validation"])
        w.writerow(["Where do you shop?", '["bank", "library", "mall"]', "(c)", "test"])
        w.writerow(["Where are loans made?", "bank|library|mall", "0", "train"])
    r = import_source(conn, str(f))
    assert r.task_type == "multiple_choice" and r.counts == {"train": 2, "dev": 1, "test": 1}
    got = {row["question"]: (row["answer"], json.loads(row["choices"])) for row in conn.execute("SELECT * FROM examples")}
    assert got["Where do you borrow books?"] == ("B", ["bank", "library", "mall"])
    assert got["Where do you shop?"][0] == "C"
    assert got["Where are loans made?"][0] == "A"


def test_task_type_override_and_yes_no_detection(conn, tmp_path):
    rows = [{"question": f"Is {i} even?", "answer": "yes" if i % 2 == 0 else "False"} for i in range(30)]
    r = import_source(conn, str(write_jsonl(tmp_path / "yn.jsonl", rows)))
    assert r.task_type == "yes_no"
    assert {x[0] for x in conn.execute("SELECT DISTINCT answer FROM examples")} == {"yes", "no"}
    r2 = import_source(conn, str(write_jsonl(tmp_path / "yn2.jsonl", rows)), task_type="free_text")
    assert r2.task_type == "free_text" and not r2.already_imported  # different task type, different content


def test_no_split_column_uses_seeded_80_10_10(conn, tmp_path):
    rows = [{"id": i, "question": f"q{i}", "answer": i} for i in range(1000)]
    r = import_source(conn, str(write_jsonl(tmp_path / "nosplit.jsonl", rows)))
    assert sum(r.counts.values()) == 1000
    assert 740 < r.counts["train"] < 860 and 60 < r.counts["dev"] < 140 and 60 < r.counts["test"] < 140
    for row in conn.execute("SELECT ext_id, split FROM examples"):
        assert row["split"] == data_rows.split_by_bucket(row["ext_id"], *data_rows.DEFAULT_SPLIT)


def test_json_list_and_parquet(conn, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": str(i), "question": f"{i} squared?", "answer": str(i * i), "split": "train" if i < 8 else "test",
             "source": "hand"} for i in range(10)]
    (tmp_path / "sq.json").write_text(json.dumps(rows), encoding="utf-8")
    r = import_source(conn, str(tmp_path / "sq.json"))
    assert r.rows == 10 and r.counts["dev"] >= 1  # at least one dev row is carved even from tiny train sets
    assert json.loads(conn.execute("SELECT meta FROM examples LIMIT 1").fetchone()[0]) == {"source": "hand"}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "sq.parquet")
    r2 = import_source(conn, str(tmp_path / "sq.parquet"), name="sq_parquet")
    assert r2.already_imported and r2.name == "sq"  # same content, other format: detected


def test_reimport_is_detected_even_shuffled(conn, tmp_path):
    rows = math_rows(50)
    import_source(conn, str(write_jsonl(tmp_path / "a.jsonl", rows)), columns=ColumnMap(split="part"))
    before = snapshot(conn)
    again = import_source(conn, str(write_jsonl(tmp_path / "a.jsonl", rows)), columns=ColumnMap(split="part"))
    assert again.already_imported and "already imported" in again.summary()
    random.Random(0).shuffle(rows)
    shuffled = import_source(conn, str(write_jsonl(tmp_path / "b.jsonl", rows)), columns=ColumnMap(split="part"))
    assert shuffled.already_imported and shuffled.name == "a"
    assert snapshot(conn) == before


def test_same_name_different_content_is_refused(conn, tmp_path):
    import_source(conn, str(write_jsonl(tmp_path / "a.jsonl", math_rows(10))))
    before = snapshot(conn)
    with pytest.raises(DataImportError, match="already exists with different content"):
        import_source(conn, str(write_jsonl(tmp_path / "other.jsonl", math_rows(11))), name="a")
    assert snapshot(conn) == before


# ------------------------------------------------------------------ bad input: named, and nothing written

@pytest.fixture
def populated(conn, tmp_path):
    """A project that already holds one dataset, so "unchanged" is a real check."""
    import_source(conn, str(write_jsonl(tmp_path / "existing.jsonl", math_rows(20))))
    return conn


def test_misnamed_column_suggests_close_names(populated, tmp_path):
    before = snapshot(populated)
    f = write_jsonl(tmp_path / "x.jsonl", math_rows(5))
    with pytest.raises(DataImportError) as e:
        import_source(populated, str(f), columns=ColumnMap(question="problm"))
    msg = str(e.value)
    assert "x.jsonl" in msg and "'problm'" in msg and "did you mean 'problem'" in msg
    assert snapshot(populated) == before


def test_missing_answer_column(populated, tmp_path):
    before = snapshot(populated)
    f = write_jsonl(tmp_path / "noanswer.jsonl", [{"question": "q", "response": "4"}])
    with pytest.raises(DataImportError, match=r"noanswer.jsonl.*column 'answer'.*no answer column.*--answer"):
        import_source(populated, str(f))
    assert snapshot(populated) == before


def test_empty_files(populated, tmp_path):
    before = snapshot(populated)
    for name, text in (("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("header.csv", "question,answer\n"),
                       ("empty.json", "[]")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(DataImportError, match=rf"file {name}: .*empty"):
            import_source(populated, str(tmp_path / name))
    assert snapshot(populated) == before


def test_invalid_json_on_row_5000(populated, tmp_path, monkeypatch):
    monkeypatch.setattr(data_rows, "BATCH", 500)  # several batches are written before the bad row
    lines = [json.dumps({"id": i, "question": f"q{i}", "answer": i}) for i in range(1, 6001)]
    lines[4999] = '{"id": 5000, "question": "q5000", "answer": 5000'
    f = tmp_path / "big.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(populated)
    with pytest.raises(DataImportError, match=r"file big.jsonl, row 5000: invalid JSON"):
        import_source(populated, str(f))
    assert snapshot(populated) == before


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_wrong_encoding(populated, tmp_path, suffix):
    f = tmp_path / f"latin.{suffix}"
    if suffix == "csv":
        text = "question,answer\n" + "".join(f"q{i},{i}\n" for i in range(1, 40)) + "Combien coûte un café?,3\n"
    else:
        text = "".join(json.dumps({"question": f"q{i}", "answer": i}) + "\n" for i in range(1, 40)) \
               + '{"question": "Combien coûte un café?", "answer": 3}\n'
    f.write_bytes(text.encode("latin-1"))
    before = snapshot(populated)
    with pytest.raises(DataImportError, match=rf"file latin.{suffix}, row 40: the file is not UTF-8 .*0xfb"):
        import_source(populated, str(f))
    assert snapshot(populated) == before


def test_gold_that_does_not_parse(populated, tmp_path, monkeypatch):
    monkeypatch.setattr(data_rows, "BATCH", 10)
    rows = [{"id": i, "question": f"q{i}", "answer": str(i)} for i in range(60)]
    rows[47]["answer"] = "about a dozen"
    f = write_jsonl(tmp_path / "gold.jsonl", rows)
    before = snapshot(populated)
    with pytest.raises(DataImportError, match=r"file gold.jsonl, row 48, column 'answer': the gold answer does "
                                              r"not parse as numeric: 'about a dozen'.*--task-type"):
        import_source(populated, str(f))
    assert snapshot(populated) == before
    # The same file as free text is fine.
    assert import_source(populated, str(f), task_type="free_text").rows == 60


def test_bad_split_value_and_duplicate_id(populated, tmp_path, monkeypatch):
    monkeypatch.setattr(data_rows, "BATCH", 4)
    before = snapshot(populated)
    rows = [{"id": i, "question": "q", "answer": 1, "split": "train"} for i in range(10)]
    rows[6]["split"] = "holdout"
    with pytest.raises(DataImportError, match=r"row 7, column 'split': split 'holdout'"):
        import_source(populated, str(write_jsonl(tmp_path / "s.jsonl", rows)))
    rows[6]["split"] = "train"
    rows[9]["id"] = 2
    with pytest.raises(DataImportError, match=r"row 10, column 'id': duplicate id '2'"):
        import_source(populated, str(write_jsonl(tmp_path / "d.jsonl", rows)))
    assert snapshot(populated) == before


def test_unknown_source_and_file_type(conn, tmp_path):
    with pytest.raises(DataImportError, match="not a built-in source"):
        import_source(conn, str(tmp_path / "nope.jsonl"))
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataImportError, match="unknown file type"):
        import_source(conn, str(tmp_path / "data.xlsx"))


# ------------------------------------------------------------------ Hugging Face

def test_save_to_disk_folder(conn, tmp_path):
    import datasets

    def part(n, start, labelled=True):
        return datasets.Dataset.from_dict({
            "id": [f"x{i}" for i in range(start, start + n)],
            "question": [f"Pick {i}" for i in range(start, start + n)],
            "choices": [{"label": ["A", "B"], "text": ["left", "right"]}] * n,
            "answerKey": [("A" if i % 2 else "B") if labelled else "" for i in range(start, start + n)],
        })

    folder = tmp_path / "hfds"
    datasets.DatasetDict({"train": part(30, 0), "validation": part(5, 30), "test": part(5, 35, labelled=False)}) \
        .save_to_disk(str(folder))
    r = import_source(conn, str(folder), name="lr")
    assert r.task_type == "multiple_choice"
    assert r.counts == {"train": 30, "dev": 5, "test": 0}  # unlabeled test split skipped
    assert any("skipped split 'test'" in n for n in r.notes)


def test_hub_name_offline_gives_clear_error(conn, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataImportError, match=r"hf:nobody/nothing.*save_to_disk"):
        import_source(conn, "hf:nobody/nothing")


# ------------------------------------------------------------------ read helpers

def test_queries_page_and_filter(conn, tmp_path):
    import_source(conn, str(write_jsonl(tmp_path / "arith.jsonl", math_rows(120))), columns=ColumnMap(split="part"))
    ds = list_datasets(conn)[0]
    assert ds.name == "arith" and ds.total == 120 and ds.counts["test"] == 60
    assert count_examples(conn, ds.id, split="test") == 60
    page = page_examples(conn, ds.id, split="test", limit=25, offset=50)
    assert len(page) == 10 and all(p["split"] == "test" for p in page)
    hits = page_examples(conn, ds.id, search="is 7 + 7?")
    assert [h["ext_id"] for h in hits] == ["q7"]
    assert count_examples(conn, ds.id, search="100%") == 0  # % is literal, not a wildcard


def test_large_file_duplicate_in_a_later_batch_and_bad_unicode(populated, tmp_path, monkeypatch):
    """Past the detection sample rows are converted in a helper thread and written in batches; errors
    found there still name the row and leave the store unchanged."""
    monkeypatch.setattr(data_rows, "BATCH", 500)
    rows = [{"id": f"r{i}", "question": f"What is {i} + 1?", "answer": f"{i + 1:,}", "split": "train"}
            for i in range(3000)]
    rows[2600]["id"] = "r1700"
    before = snapshot(populated)
    with pytest.raises(DataImportError, match=r"row 2601, column 'id': duplicate id 'r1700'"):
        import_source(populated, str(write_jsonl(tmp_path / "dup.jsonl", rows)))
    assert snapshot(populated) == before
    rows[2600]["id"] = "r2600"
    lines = [json.dumps(r) for r in rows]
    lines[2200] = lines[2200].replace('"What is', '"\\ud800 What is')  # a lone surrogate escape
    f = tmp_path / "surrogate.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataImportError, match=r"row 2201, column 'question': the text is not valid Unicode"):
        import_source(populated, str(f))
    assert snapshot(populated) == before
    result = import_source(populated, str(write_jsonl(tmp_path / "ok.jsonl", rows)))
    assert result.rows == 3000 and result.counts["dev"] > 0  # dev carved from train
    got = populated.execute("SELECT ext_id, answer FROM examples WHERE dataset_id = ? ORDER BY id",
                            (result.dataset_id,)).fetchall()
    assert [tuple(r) for r in got] == [(f"r{i}", str(i + 1)) for i in range(3000)]  # file order, canonical gold


def test_content_hash_is_the_documented_sum_of_row_hashes(conn, tmp_path):
    """The importer's fast paths must not change the content hash: recompute it from the module doc's rule."""
    import hashlib

    rows = [{"id": f"h{i}", "question": f"Q {i}?", "answer": f"{i * 1000:,}", "rationale": None if i % 3 else f"r{i}",
             "split": ["train", "dev", "test"][i % 3], "source": "x"} for i in range(50)]
    result = import_source(conn, str(write_jsonl(tmp_path / "h.jsonl", rows)))
    acc = 0
    for r in rows:
        body = repr((r["id"], r["question"], None, str(int(r["answer"].replace(",", ""))), r["rationale"],
                     "numeric")).encode()
        acc += int.from_bytes(hashlib.sha256(body + b"\x00" + r["split"].encode()).digest(), "big")
    assert result.content_hash == hashlib.sha256(f"{len(rows)}:{acc % 2**256:064x}".encode()).hexdigest()
    meta = conn.execute("SELECT meta FROM examples WHERE ext_id = 'h4'").fetchone()[0]
    assert json.loads(meta) == {"source": "x"}
