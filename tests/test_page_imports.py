"""Pages open fast: no page pulls torch or transformers into the app's process, and GPUs are listed without torch.

Each page runs headless (AppTest) in a fresh interpreter over a store with a snapshot, a finished train run
with losses and a live one, so every section of the page is drawn; then the interpreter's modules are listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror_core import device, jobs, store
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "datasets", "peft", "accelerate")
PROBE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print(json.dumps({"exceptions": [e.value for e in at.exception],
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


@pytest.mark.parametrize("page", ["pages/4_Train.py", "pages/1_Data.py", "pages/3_Review.py"])
def test_page_does_not_import_torch_or_transformers(conn, home, page):
    sid = make_snapshot(conn, "snap", n_train=2, n_dev=1)
    done = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    conn.execute("UPDATE runs SET status = 'succeeded', progress_done = 2, progress_total = 2 WHERE id = ?", (done,))
    for step in (1, 2):
        conn.execute("INSERT INTO metrics VALUES (?, ?, 'loss/answer', ?, ?)", (done, step, 3.0 / step, store.now()))
        conn.execute("INSERT INTO metrics VALUES (?, ?, 'loss', ?, ?)", (done, step, 3.0 / step, store.now()))
    env = dict(os.environ, MIRROR_HOME=str(home), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / page)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["exceptions"] == []
    assert out["heavy"] == [], f"{page} imported {out['heavy']} into the app process"


def _gpu(root: Path, bus: str, model: str, uuid: str) -> None:
    (root / bus).mkdir(parents=True)
    (root / bus / "information").write_text(f"Model: \t\t {model}\nIRQ:  \t\t 95\nGPU UUID: \t {uuid}\n"
                                            f"Bus Location: \t {bus}\n")


def test_gpu_names_read_from_the_driver_and_honour_cuda_visible_devices(tmp_path):
    _gpu(tmp_path, "0000:3b:00.0", "NVIDIA H100 80GB HBM3", "GPU-aaaa-1111")
    _gpu(tmp_path, "0000:86:00.0", "NVIDIA A10", "GPU-bbbb-2222")
    assert device.gpu_names(tmp_path, env={}) == ["NVIDIA H100 80GB HBM3", "NVIDIA A10"]
    assert device.gpu_names(tmp_path, env={"CUDA_VISIBLE_DEVICES": "1"}) == ["NVIDIA A10"]
    assert device.gpu_names(tmp_path, env={"CUDA_VISIBLE_DEVICES": "GPU-bbbb,0"}) == ["NVIDIA A10",
                                                                                       "NVIDIA H100 80GB HBM3"]
    assert device.gpu_names(tmp_path, env={"CUDA_VISIBLE_DEVICES": "0,7,1"}) == ["NVIDIA H100 80GB HBM3"]
    assert device.gpu_names(tmp_path, env={"CUDA_VISIBLE_DEVICES": ""}) == []
    assert device.gpu_names(tmp_path, env={"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert device.gpu_names(tmp_path / "no-driver", env={}) == []
