"""Job engine benchmarks against the simulator on loopback (issue 3).

1. N concurrent generations in one process: wall time, peak RSS, provider HTTP requests per job.
2. Overhead of one generation through the engine (Toolkit → SQLite job record → adapter → media
   keep) compared with the same submit / poll / result / download done with bare httpx against the
   same simulator, with the same poll interval. Reported as medians and their ratio.

3. ``--curve 1000,2500,5000,10000``: the concurrent run at each size, each in a fresh process (so
   each peak RSS is its own), to show how wall time and memory grow with the number of jobs.

Where the simulator runs (``--simulator``): ``process`` (the default for the concurrent runs) starts
it as ``python -m agent_tools.simulator`` in a process of its own, as a real provider is not in
ours: the engine process's peak RSS is then the engine's alone (the simulator's is reported beside
it), and rendering a video per job no longer competes with the engine for its GIL. ``inline`` runs
it in the measured process, as before (its render cache, ~47 MiB, and per-request state count).
Requests per job come from the simulator's own counters (``/_sim/stats``) either way.

Run:  .venv/bin/python bench/bench_jobs.py [--jobs 1000] [--rounds 15] [--curve 1000,10000] [--simulator inline]
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
from agent_tools.simulator.server import SimulatorURLs  # noqa: E402
from agent_tools.toolkit import Account, Toolkit  # noqa: E402

POLL = 0.05
ACCOUNT = Account("bench")


def settings_for(sim: "Simulator | SimulatorProcess", root: Path, initial: float, maximum: float) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "bench-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "bench-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": str(root / "bench.db"), "media_dir": str(root / "media")},
        "polling": {"initial_seconds": initial, "max_seconds": maximum, "factor": 1.5},
        "quotas": {"default": {}},
    })


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SimulatorProcess(SimulatorURLs):
    """``python -m agent_tools.simulator`` in a process of its own, with the URLs and counters a
    bench needs (the same attributes as an in-process ``Simulator``)."""

    def __init__(self, run_seconds: float) -> None:
        self.run_seconds = run_seconds
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    async def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "agent_tools.simulator", "--port", "0", "--queue-seconds",
                                      "0", "--run-seconds", str(self.run_seconds)], stdout=subprocess.PIPE, text=True,
                                     cwd=Path(__file__).resolve().parent.parent)
        assert self.proc.stdout is not None
        first = await asyncio.to_thread(self.proc.stdout.readline)
        if "listening on " not in first:
            raise RuntimeError(f"the simulator did not start: {first!r}")
        self.base_url = first.rsplit("listening on ", 1)[1].strip()

    async def counts(self) -> tuple[int, int]:
        """(all requests, output downloads) so far, less this call itself."""
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{self.base_url}/_sim/stats")).json()
        return stats["requests"] - 1, stats["routes"].get("files.get", 0)

    def peak_rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


async def concurrent(jobs: int, simulator: str = "process") -> dict[str, float]:
    if simulator == "process":
        sim: Simulator | SimulatorProcess = SimulatorProcess(run_seconds=2.0)
        await sim.start()
    else:
        sim = Simulator(SimSettings(queue_seconds=0.0, run_seconds=2.0))
        await sim.start(host="127.0.0.1", port=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kit = await Toolkit.open(settings_for(sim, Path(tmp), 1.0, 10.0))
            cpu = time.process_time()
            start = time.perf_counter()
            results = await asyncio.gather(*(kit.generate(ACCOUNT, "hailuo_02_text_to_video",
                                                          {"prompt": f"clip {i}"}) for i in range(jobs)))
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
            await kit.close()
        if isinstance(sim, SimulatorProcess):
            requests, downloads = await sim.counts()
            sim_rss = sim.peak_rss_mib()
        else:
            requests, downloads = sim.stats.requests, sim.stats.routes.get("files.get", 0)
            sim_rss = 0.0
    finally:
        if isinstance(sim, Simulator):
            await sim.stop()
        else:
            sim.stop()
    ok = sum(r.state.value == "succeeded" for r in results)
    return {"jobs": jobs, "succeeded": ok, "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(),
            "simulator": simulator, "simulator_peak_rss_mib": sim_rss, "requests_per_job": requests / jobs,
            "provider_requests_per_job": (requests - downloads) / jobs}


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


def curve(sizes: list[int], simulator: str) -> None:
    """The concurrent run at each size in its own process; one line per size, then the ratios."""
    rows = []
    for jobs in sizes:
        out = subprocess.run([sys.executable, __file__, "--concurrent-only", str(jobs), "--simulator", simulator],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    first = rows[0]
    print(f"simulator: {simulator}" + (" (its own process; engine RSS is the engine's alone)"
                                       if simulator == "process" else " (in the measured process)"))
    print(f"{'jobs':>7}{'succeeded':>11}{'wall s':>9}{'s per 1,000':>13}{'CPU s per 1,000':>17}{'peak RSS MiB':>14}"
          f"{'sim RSS MiB':>13}{'requests/job':>14}{'with download':>15}")
    for r in rows:
        print(f"{r['jobs']:>7}{r['succeeded']:>11}{r['wall_s']:>9.1f}{r['wall_s'] * 1000 / r['jobs']:>13.2f}"
              f"{r['cpu_s'] * 1000 / r['jobs']:>17.2f}{r['peak_rss_mib']:>14.0f}{r['simulator_peak_rss_mib']:>13.0f}"
              f"{r['provider_requests_per_job']:>14.2f}{r['requests_per_job']:>15.2f}")
    last = rows[-1]
    print(f"{last['jobs'] // first['jobs']}x the jobs: wall x{last['wall_s'] / first['wall_s']:.2f}, "
          f"CPU x{last['cpu_s'] / first['cpu_s']:.2f}, peak RSS x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f}")
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--curve", help="comma-separated job counts, each run in a fresh process")
    parser.add_argument("--simulator", choices=("process", "inline"), default="process",
                        help="where the simulator runs for the concurrent runs (default: its own process)")
    parser.add_argument("--concurrent-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.concurrent_only:
        print(json.dumps(asyncio.run(concurrent(args.concurrent_only, args.simulator))))
        return
    if args.curve:
        curve([int(n) for n in args.curve.split(",")], args.simulator)
        return
    over = asyncio.run(overhead(args.rounds))
    print(f"one generation, median of {over['rounds']}: engine {over['engine_median_ms']:.1f} ms, "
          f"bare httpx {over['bare_median_ms']:.1f} ms, ratio {over['ratio']:.2f} "
          f"(+{over['engine_overhead_ms']:.1f} ms)")
    conc = asyncio.run(concurrent(args.jobs, args.simulator))
    print(f"{conc['jobs']} concurrent jobs: {conc['succeeded']} succeeded in {conc['wall_s']:.1f} s wall, "
          f"peak RSS {conc['peak_rss_mib']:.0f} MiB, {conc['provider_requests_per_job']:.2f} provider requests/job "
          f"({conc['requests_per_job']:.2f} with the output download)")


if __name__ == "__main__":
    main()
