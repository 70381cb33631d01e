"""Early stopping, the one branch of the loop the other training tests never reach: a dev loss that stops
improving ends the stage after `patience` evaluations, and in the two-stage schedule the next stage still runs."""

import pytest

from mirror_core.students import checkpoints
from mirror_core.training import data, loop
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot

FAST = dict(student="tiny", seq_len=256, batch_tokens=512, eval_every=1, patience=2)


class LogReporter(loop.QuietReporter):
    def __init__(self):
        super().__init__()
        self.logs = []

    def log(self, msg: str) -> None:
        self.logs.append(msg)


@pytest.fixture
def items(conn):
    return data.load_items(conn, make_snapshot(conn, n_train=8, n_dev=2))


@pytest.fixture
def flat_dev(monkeypatch):
    """A dev loss that never improves: the first evaluation is the best, every later one counts against patience."""
    monkeypatch.setattr(loop, "evaluate", lambda *a, **k: {"loss": 1.5, "tasks": {"answer": 1.5}})


def test_joint_run_stops_after_patience_evaluations_without_improvement(items, tmp_path, flat_dev):
    rep = LogReporter()
    summary = loop.train(TrainConfig(max_steps=8, **FAST), items, rep, tmp_path)
    # eval at steps 1 (best), 2 and 3 (no better: 1, 2) → patience 2 reached after step 3
    assert summary["stage1"] == {"steps": 3, "early_stop": True, "best_dev": 1.5}
    assert summary["global_step"] == 3 and [h["step"] for h in summary["history"]] == [1, 2, 3]
    assert [s for s, v in rep.metrics if "loss" in v] == [1, 2, 3]
    assert "early stop: dev loss did not improve for 2 evaluations" in rep.logs
    state = checkpoints.load_trainer_state(tmp_path / "checkpoints" / "last")
    assert state["finished"] and state["summary"]["stage1"]["early_stop"]
    assert checkpoints.load_meta(tmp_path / "checkpoints" / "best")["step"] == 1


def test_two_stage_early_stop_in_stage_one_still_runs_stage_two(items, tmp_path, flat_dev):
    summary = loop.train(TrainConfig(max_steps=5, schedule="two-stage", **FAST), items, LogReporter(), tmp_path)
    # Stage 2 starts with fresh patience and a fresh best: its first evaluation is best again.
    assert summary["stage1"] == {"steps": 3, "early_stop": True, "best_dev": 1.5}
    assert summary["stage2"] == {"steps": 3, "early_stop": True, "best_dev": 1.5}
    assert [(h["step"], h["stage"]) for h in summary["history"]] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert len(summary["stage_start_fingerprints"]) == 2
    assert checkpoints.load_meta(tmp_path / "checkpoints" / "best")["step"] == 4  # the final stage's best
    assert checkpoints.load_meta(tmp_path / "checkpoints" / "stage1")["step"] == 3
