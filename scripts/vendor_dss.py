"""Build mirror_core/data/vendor/dss/ from the distilling step-by-step release tarball (run once, by hand).

    python scripts/vendor_dss.py ../shared/data/dss/dss-svamp-cqa.tar.gz

Writes two gzip JSON Lines files that keep every field the product uses and the PaLM completions as they
were published (uncut: the replay teacher cuts them at the invented next "Q:" when it reads them), plus the
release's LICENSE. Nothing reads the tarball at run time.
"""

from __future__ import annotations

import gzip
import json
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "mirror_core" / "data" / "vendor" / "dss"


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    return tar.extractfile(name).read()


def _lines(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def _chunks(tar: tarfile.TarFile, prefix: str) -> list[str]:
    names = sorted((m.name for m in tar.getmembers() if m.name.startswith(prefix)),
                   key=lambda n: int(n.rsplit("_", 1)[1].split(".")[0]))
    out: list[str] = []
    for n in names:
        out += json.loads(_member(tar, n))
    return out


def _write(path: Path, rows: list[dict]) -> None:
    # mtime=0: the same input gives the same bytes, so a rerun is not a diff
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        for r in rows:
            f.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))


def main(tarball: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        svamp = []
        for split in ("train", "test"):
            rows = _lines(_member(tar, f"svamp/svamp_{split}.json"))
            cots = _chunks(tar, f"svamp/palm/{split}_CoT_")
            assert len(rows) == len(cots), (split, len(rows), len(cots))
            for i, (r, c) in enumerate(zip(rows, cots)):
                svamp.append({"id": f"svamp-{split}-{i:04d}", "split": split, "question": r["input"],
                              "equation": r["label"], "palm_cot": c})
        cqa = []
        for split in ("train", "test"):
            rows = _lines(_member(tar, f"cqa/cqa_{split}.json"))
            cots = _chunks(tar, f"cqa/palm/{split}_CoT_")
            assert len(rows) == len(cots), (split, len(rows), len(cots))
            for r, c in zip(rows, cots):
                cqa.append({"id": r["id"], "split": split, "question": r["question"], "choices": r["choices"],
                            "answer": r["answer"], "palm_cot": c})
    _write(OUT / "svamp.jsonl.gz", svamp)
    _write(OUT / "cqa_palm.jsonl.gz", cqa)
    print(f"svamp {len(svamp)} rows, cqa {len(cqa)} rows -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/dss/dss-svamp-cqa.tar.gz")
