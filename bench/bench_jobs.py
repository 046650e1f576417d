"""Job engine benchmarks against the simulator on loopback (issue 3).

1. N concurrent generations in one process: wall time, peak RSS, provider HTTP requests per job.
2. Overhead of one generation through the engine (Toolkit → SQLite job record → adapter → media
   keep) compared with the same submit / poll / result / download done with bare httpx against the
   same simulator, with the same poll interval. Reported as medians and their ratio.

3. ``--curve 1000,2500,5000,10000``: the concurrent run at each size, each in a fresh process (so
   each peak RSS is its own), to show how wall time and memory grow with the number of jobs.

Run:  .venv/bin/python bench/bench_jobs.py [--jobs 1000] [--rounds 15] [--curve 1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_tools.config import Settings  # noqa: E402
from agent_tools.simulator import SimSettings, Simulator  # noqa: E402
from agent_tools.toolkit import Account, Toolkit  # noqa: E402

POLL = 0.05
ACCOUNT = Account("bench")


def settings_for(sim: Simulator, root: Path, initial: float, maximum: float) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "bench-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "bench-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": str(root / "bench.db"), "media_dir": str(root / "media")},
        "polling": {"initial_seconds": initial, "max_seconds": maximum, "factor": 1.5},
        "quotas": {"default": {}},
    })


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def concurrent(jobs: int) -> dict[str, float]:
    sim = Simulator(SimSettings(queue_seconds=0.0, run_seconds=2.0))
    await sim.start(host="127.0.0.1", port=0)
    with tempfile.TemporaryDirectory() as tmp:
        kit = await Toolkit.open(settings_for(sim, Path(tmp), 1.0, 10.0))
        start = time.perf_counter()
        results = await asyncio.gather(*(kit.generate(ACCOUNT, "hailuo_02_text_to_video", {"prompt": f"clip {i}"})
                                         for i in range(jobs)))
        wall = time.perf_counter() - start
        await kit.close()
    await sim.stop()
    ok = sum(r.state.value == "succeeded" for r in results)
    return {"jobs": jobs, "succeeded": ok, "wall_s": wall, "peak_rss_mib": peak_rss_mib(),
            "requests_per_job": sim.stats.requests / jobs,
            "provider_requests_per_job": (sim.stats.requests - sim.stats.routes.get("files.get", 0)) / jobs}


async def bare_httpx(client: httpx.AsyncClient, sim: Simulator, root: Path, i: int) -> float:
    start = time.perf_counter()
    headers = {"Authorization": "Key bench-key"}
    submitted = (await client.post(f"{sim.fal_queue_url}/fal-ai/minimax/hailuo-02/standard/text-to-video",
                                   json={"prompt": f"bare {i}"}, headers=headers)).json()
    while True:
        status = (await client.get(submitted["status_url"], params={"logs": "1"}, headers=headers)).json()
        if status["status"] == "COMPLETED":
            break
        await asyncio.sleep(POLL)
    result = (await client.get(submitted["response_url"], headers=headers)).json()
    video = await client.get(result["video"]["url"])
    (root / f"bare-{i}.mp4").write_bytes(video.content)
    return time.perf_counter() - start


async def overhead(rounds: int) -> dict[str, float]:
    sim = Simulator(SimSettings(queue_seconds=0.0, run_seconds=0.2))
    await sim.start(host="127.0.0.1", port=0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kit = await Toolkit.open(settings_for(sim, root, POLL, POLL))
        async with httpx.AsyncClient() as client:
            await bare_httpx(client, sim, root, -1)  # warm both paths (media cache, connections)
            await kit.generate(ACCOUNT, "hailuo_02_text_to_video", {"prompt": "warm"})
            engine, bare = [], []
            for i in range(rounds):
                start = time.perf_counter()
                job = await kit.generate(ACCOUNT, "hailuo_02_text_to_video", {"prompt": f"engine {i}"})
                assert job.state.value == "succeeded", job.error
                engine.append(time.perf_counter() - start)
                bare.append(await bare_httpx(client, sim, root, i))
        await kit.close()
    await sim.stop()
    e, b = statistics.median(engine), statistics.median(bare)
    return {"rounds": rounds, "engine_median_ms": e * 1000, "bare_median_ms": b * 1000, "ratio": e / b,
            "engine_overhead_ms": (e - b) * 1000}


def curve(sizes: list[int]) -> None:
    """The concurrent run at each size in its own process; one line per size, then the ratios."""
    rows = []
    for jobs in sizes:
        out = subprocess.run([sys.executable, __file__, "--concurrent-only", str(jobs)], capture_output=True,
                             text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    first = rows[0]
    print(f"{'jobs':>7}{'succeeded':>11}{'wall s':>9}{'s per 1,000':>13}{'peak RSS MiB':>14}{'requests/job':>14}")
    for r in rows:
        print(f"{r['jobs']:>7}{r['succeeded']:>11}{r['wall_s']:>9.1f}{r['wall_s'] * 1000 / r['jobs']:>13.2f}"
              f"{r['peak_rss_mib']:>14.0f}{r['provider_requests_per_job']:>14.2f}")
    last = rows[-1]
    print(f"{last['jobs'] // first['jobs']}x the jobs: wall x{last['wall_s'] / first['wall_s']:.2f}, "
          f"peak RSS x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f}")
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--curve", help="comma-separated job counts, each run in a fresh process")
    parser.add_argument("--concurrent-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.concurrent_only:
        print(json.dumps(asyncio.run(concurrent(args.concurrent_only))))
        return
    if args.curve:
        curve([int(n) for n in args.curve.split(",")])
        return
    over = asyncio.run(overhead(args.rounds))
    print(f"one generation, median of {over['rounds']}: engine {over['engine_median_ms']:.1f} ms, "
          f"bare httpx {over['bare_median_ms']:.1f} ms, ratio {over['ratio']:.2f} "
          f"(+{over['engine_overhead_ms']:.1f} ms)")
    conc = asyncio.run(concurrent(args.jobs))
    print(f"{conc['jobs']} concurrent jobs: {conc['succeeded']} succeeded in {conc['wall_s']:.1f} s wall, "
          f"peak RSS {conc['peak_rss_mib']:.0f} MiB, {conc['provider_requests_per_job']:.2f} provider requests/job "
          f"({conc['requests_per_job']:.2f} with the output download)")


if __name__ == "__main__":
    main()
