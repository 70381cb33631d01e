"""Generation speed, one run (issue 3):
(a) a teacher with 100 ms simulated latency, 2,000 requests at concurrency 32: wall time vs the ideal
    2000 x 0.1 / 32 s (target efficiency >= 85%);
(b) the same 2,000 requests again, all answered by the cache: requests/s (target >= 5,000/s);
(c) the local transformers teacher (offline SmolLM2), batched vs one prompt at a time: tokens/s ratio
    (target >= 3x).
Everything goes through the real call engine and a real SQLite store in a temporary MIRROR_HOME.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> int:
    os.environ["MIRROR_HOME"] = tempfile.mkdtemp(prefix="genbench-")
    from mirror_core import store
    from mirror_core.generation.calls import Call, CallEngine
    from mirror_core.teachers.base import GenParams, TeacherRequest
    from mirror_core.teachers.fake import FakeTeacher

    conn = store.connect()
    n, conc, lat = 2000, 32, 0.1
    teacher = FakeTeacher("bench", latency_s=lat)

    def make_calls():
        return [Call(teacher, TeacherRequest([{"role": "user", "content": f"Question {i}: what is {i} + 1?"}],
                                             GenParams(sample_index=0)), "bench", 1, "cot") for i in range(n)]

    engine = CallEngine(conn, limits={"fake": (conc, None)})
    t0 = time.perf_counter()
    s = engine.run(make_calls())
    wall = time.perf_counter() - t0
    ideal = n * lat / conc
    assert s.sent == n and s.by_status == {"ok": n}, s
    results = {"a_wall_s": round(wall, 3), "a_ideal_s": ideal, "a_efficiency": round(ideal / wall, 3)}
    print(f"(a) {n} requests, {lat * 1000:.0f} ms latency, concurrency {conc}: {wall:.2f} s vs ideal {ideal:.2f} s"
          f" -> efficiency {ideal / wall:.1%} (target >= 85%)", flush=True)

    calls = make_calls()
    t0 = time.perf_counter()
    s = engine.run(calls)
    cached_wall = time.perf_counter() - t0
    assert s.sent == 0 and s.cached == n, s
    rps = n / cached_wall
    results.update(b_cached_s=round(cached_wall, 4), b_requests_per_s=round(rps))
    print(f"(b) the same {n} fully cached: {cached_wall * 1000:.0f} ms -> {rps:,.0f} requests/s (target >= 5,000/s)",
          flush=True)

    results.update(local_ratio(TeacherRequest, GenParams))
    print(json.dumps(results))
    return 0


def local_ratio(TeacherRequest, GenParams) -> dict:
    import torch

    from mirror_core.teachers.local import LocalTeacher

    threads = int(os.environ.get("MIRROR_TORCH_THREADS", 1))
    torch.set_num_threads(threads)  # a shared CPU: spinning threads make every number noise
    n_prompts, max_tokens = 16, 32
    teacher = LocalTeacher("smollm2", device="cpu", batch_size=n_prompts)
    topics = ["apples", "trains", "rivers", "stars", "bread", "cats", "music", "rain", "chess", "maps", "bees",
              "clocks", "snow", "ships", "paper", "salt"]
    reqs = [TeacherRequest([{"role": "user", "content": f"Write two sentences about {t}."}],
                           GenParams(temperature=0.0, max_tokens=max_tokens)) for t in topics[:n_prompts]]
    teacher.complete(reqs[:2])  # warm up
    t0 = time.perf_counter()
    one = [teacher.complete([r])[0] for r in reqs]
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = teacher.complete(reqs)
    t_batch = time.perf_counter() - t0
    tok_one = sum(c.output_tokens for c in one) / t_one
    tok_batch = sum(c.output_tokens for c in batched) / t_batch
    print(f"(c) local SmolLM2-135M on CPU ({threads} thread(s)), {n_prompts} prompts x {max_tokens} new tokens: "
          f"one at a time {tok_one:.1f} tok/s, batched {tok_batch:.1f} tok/s -> {tok_batch / tok_one:.2f}x "
          f"(target >= 3x)", flush=True)
    return {"c_one_tok_s": round(tok_one, 1), "c_batched_tok_s": round(tok_batch, 1),
            "c_ratio": round(tok_batch / tok_one, 2)}


if __name__ == "__main__":
    raise SystemExit(main())
