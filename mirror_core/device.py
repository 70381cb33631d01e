"""Which devices run bf16 autocast faster than fp32: CUDA GPUs that say so, and CPUs where it is measured.

A CPU without bf16 instructions (e.g. AMD EPYC Zen 3: AVX2 only) emulates bf16 matmuls, far slower than
fp32, so auto mode leaves bf16 off there. Having the instructions is not enough either: on a Xeon with
avx512_bf16 but no AMX, this torch build ran a bf16 matmul at 0.51–0.59× fp32 and a SmolLM2 training step
at 0.69× (2026-12-06, docs/BENCHMARKS.md), while AMX CPUs run it several times faster. So on a CPU with
the flags, auto mode times one small matmul in both dtypes once per process and uses bf16 only where it
is clearly faster.
"""

from __future__ import annotations

import functools
from pathlib import Path

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MIN_SPEEDUP = 1.2  # bf16 must beat fp32 by this much (the check's own noise is a few percent)


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 instruction flags this CPU reports in /proc/cpuinfo (empty when none or unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return [f for f in BF16_CPU_FLAGS if f in flags]


def bf16_autocast(device: str, requested: bool | None) -> tuple[bool, str]:
    """(use bf16, reason for the job log). requested None = auto, True/False = forced."""
    import torch

    if device.startswith("cuda"):
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if requested is None:
            return ok, f"{'on' if ok else 'off'} (cuda, bf16 {'supported' if ok else 'unsupported'})"
        return requested, f"{'on' if requested else 'off'} (cuda, set by flag)"
    if requested is None:
        flags = cpu_bf16_flags()
        return cpu_auto(flags, cpu_bf16_speedup() if flags else None)
    return requested, f"{'on' if requested else 'off'} (cpu, set by flag)"


def cpu_auto(flags: list[str], speedup: float | None) -> tuple[bool, str]:
    """Auto mode on a CPU: (use bf16, reason), from its bf16 flags and the measured bf16/fp32 matmul speed."""
    if not flags:
        return False, "off (cpu has no amx_bf16/avx512_bf16: bf16 would be emulated and slower)"
    name = "/".join(f.replace("_bf16", "") if f == "amx_bf16" else f for f in flags)
    if speedup is None:
        return False, f"off (cpu {name}: bf16 speed not measured)"
    on = speedup >= BF16_MIN_SPEEDUP
    return on, f"{'on' if on else 'off'} (cpu {name}: bf16 matmul measured {speedup:.2f}× fp32)"


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(n: int = 512, reps: int = 10) -> float:
    """fp32 time / bf16 time of an n×n matmul on this CPU, after a warm-up (≈50 ms on these cores)."""
    import time

    import torch

    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        seconds[dtype] = time.perf_counter() - t
    return seconds[torch.float32] / seconds[torch.bfloat16]


def autocast(device: str, enabled: bool):
    """torch.autocast to bf16 on the device type, or a no-op context."""
    import contextlib

    import torch

    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def gpu_names(proc_root: str | Path = "/proc/driver/nvidia/gpus", env: dict[str, str] | None = None) -> list[str]:
    """Names of the NVIDIA GPUs this process may use, read from the driver's /proc files, without torch.

    The Train page needs only this list to offer devices; importing torch for it costs seconds and hundreds
    of MB in the app's process. CUDA_VISIBLE_DEVICES is honoured as CUDA reads it: indices or GPU UUIDs,
    stopping at the first entry that names no GPU ("" or -1: none).
    """
    import os

    env = os.environ if env is None else env
    gpus: list[tuple[str, str]] = []  # (model, uuid) in the driver's (PCI bus) order, as CUDA numbers them
    root = Path(proc_root)
    for info in sorted(root.glob("*/information")) if root.is_dir() else []:
        try:
            fields = dict(line.split(":", 1) for line in info.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        gpus.append((fields.get("Model", "").strip() or info.parent.name, fields.get("GPU UUID", "").strip()))
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [model for model, _ in gpus]
    picked = []
    for part in (p.strip() for p in visible.split(",")):
        match = (gpus[int(part)] if part.isdigit() and int(part) < len(gpus)
                 else next((g for g in gpus if part and g[1].startswith(part)), None))
        if match is None:
            break
        picked.append(match[0])
    return picked
