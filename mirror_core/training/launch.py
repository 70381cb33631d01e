"""Several ranks: the command the app runs when more than one GPU (or `nproc` > 1) is picked, and the
per-rank entry point it starts (`python -m mirror_core.training.launch RUN_ID`).

    python -m torch.distributed.run --standalone --nproc_per_node N -m mirror_core.training.launch RUN_ID

is what `torchrun` runs; `accelerate launch --multi_gpu --num_processes N -m mirror_core.training.launch
RUN_ID` starts the same entry point (accelerate sets the same RANK/WORLD_SIZE/LOCAL_RANK variables).
Each rank builds the same TrainConfig from the run row, joins the process group (NCCL on GPUs, gloo
on CPU) and calls loop.train; rank 0 reports to the store and writes checkpoints.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from mirror_core import config


def gpus_in(device: str | None) -> int:
    """'cuda:0,1' → 2, 'cuda:0' → 1, 'cpu' → 0."""
    if not device or not device.startswith("cuda"):
        return 0
    ids = device.split(":", 1)[1] if ":" in device else ""
    return len([i for i in ids.split(",") if i.strip()]) or 1


def nproc_for(cfg, device: str | None) -> int:
    return cfg.nproc or max(1, gpus_in(device))


def command(run_id: int, nproc: int, launcher: str = "torchrun") -> list[str]:
    """The launch command for `nproc` ranks on this machine."""
    if launcher == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(nproc),
                "-m", "mirror_core.training.launch", str(run_id)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "mirror_core.training.launch", str(run_id)]


def env_for(home) -> dict[str, str]:
    env = dict(os.environ)
    env["MIRROR_HOME"] = str(config.home(home))
    env.setdefault("OMP_NUM_THREADS", "1")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.distributed as dist

    from mirror_core import jobs, store
    from mirror_core.training import data, loop
    from mirror_core.training.config import TrainConfig

    args = argparse.ArgumentParser(prog="mirror_core.training.launch").parse_known_args(argv)[1]
    run_id = int(args[0])
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    home = config.home()
    conn = store.connect(home, migrate=False)
    row = jobs.get(conn, run_id)
    cfg = TrainConfig.from_dict(store.loads(row["config"]))
    if rank == 0:
        reporter = jobs.JobContext(run_id=run_id, kind="train", config=store.loads(row["config"]), home=home,
                                   conn=conn, run_dir=config.run_dir(run_id, home))
        signal.signal(signal.SIGTERM, lambda *_: reporter._stop.set())
        if hasattr(reporter, "log"):
            reporter.log(f"rank 0 of {dist.get_world_size()} ({backend})")
    else:
        reporter = loop.QuietReporter()
        signal.signal(signal.SIGTERM, lambda *_: setattr(reporter, "stop_after", 0))
    items = data.load_items(conn, row["snapshot_id"])
    try:
        summary = loop.train(cfg, items, reporter, config.run_dir(run_id, home), snapshot_id=row["snapshot_id"])
        if rank == 0:
            reporter.set_result(loop.result_of(summary))
    except jobs.StopRequested:
        pass
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
