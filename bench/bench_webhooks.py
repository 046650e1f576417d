"""Provider requests per job with webhooks vs polling, in the same run (issue 17).

One simulator; two Toolkits side by side, each with its own database: one with ``[webhooks]
public_url`` pointing at its receiver (the aiohttp mount ``videogen discord`` uses) on loopback, one
without (polling 1 s growing to 10 s, the defaults). Half the jobs go to each, all concurrently, so
both see the same load. Every provider API call an adapter makes is counted by an httpx event hook
on that Toolkit's own clients (submit, status, result); output downloads are counted apart.

Run:  .venv/bin/python bench/bench_webhooks.py [--jobs 1000] [--run-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_tools.config import Settings  # noqa: E402
from agent_tools.providers.fal import FalAdapter  # noqa: E402
from agent_tools.simulator import SimSettings, Simulator  # noqa: E402
from agent_tools.toolkit import Account, Toolkit  # noqa: E402
from agent_tools.webhooks.mount import serve_aiohttp  # noqa: E402

ACCOUNT = Account("bench")
TOOL = "hailuo_02_text_to_video"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def open_kit(sim: Simulator, root: Path, public_url: str | None,
                   counts: collections.Counter[str]) -> Toolkit:
    async def count(request: httpx.Request) -> None:
        counts["status" if request.url.path.endswith("/status") else
               "submit" if request.method == "POST" else "result"] += 1

    settings = Settings.model_validate({
        "fal": {"key": "bench-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "storage": {"database": str(root / "bench.db"), "media_dir": str(root / "media")},
        "quotas": {"default": {}},
        "webhooks": {"public_url": public_url, "fal_jwks_url": sim.fal_jwks_url} if public_url else {},
    })
    client = httpx.AsyncClient(event_hooks={"request": [count]}, timeout=60,
                               limits=httpx.Limits(max_connections=200))
    adapter = FalAdapter(settings.fal.key, queue_url=sim.fal_queue_url, rest_url=sim.fal_rest_url, client=client)
    return await Toolkit.open(settings, adapters={"fal": adapter})


async def run(jobs: int, run_seconds: float) -> dict[str, dict[str, float]]:
    sim = Simulator(SimSettings(queue_seconds=0.0, run_seconds=run_seconds))
    await sim.start(host="127.0.0.1", port=0)
    counts = {"webhooks": collections.Counter[str](), "polling": collections.Counter[str]()}
    port = free_port()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        hooked = await open_kit(sim, Path(a), f"http://127.0.0.1:{port}", counts["webhooks"])
        polled = await open_kit(sim, Path(b), None, counts["polling"])
        receiver = await serve_aiohttp(hooked.webhooks, "127.0.0.1", port)
        start = time.perf_counter()
        half = jobs // 2
        results = await asyncio.gather(
            *(hooked.generate(ACCOUNT, TOOL, {"prompt": f"hooked {i}"}) for i in range(half)),
            *(polled.generate(ACCOUNT, TOOL, {"prompt": f"polled {i}"}) for i in range(jobs - half)))
        wall = time.perf_counter() - start
        await receiver.cleanup()
        woken = (await hooked.db.fetchone("SELECT COUNT(*) FROM jobs WHERE woken_at IS NOT NULL"))[0]
        for kit in (hooked, polled):
            await kit.close()
    await sim.stop()
    ok = {"webhooks": sum(r.state.value == "succeeded" for r in results[:half]),
          "polling": sum(r.state.value == "succeeded" for r in results[half:])}
    n = {"webhooks": half, "polling": jobs - half}
    report = {}
    for mode, c in counts.items():
        report[mode] = {"jobs": n[mode], "succeeded": ok[mode], "submit": c["submit"] / n[mode],
                        "status": c["status"] / n[mode], "result": c["result"] / n[mode],
                        "provider_requests_per_job": sum(c.values()) / n[mode]}
    report["run"] = {"wall_s": wall, "downloads_per_job": sim.stats.routes.get("files.get", 0) / jobs,
                     "callbacks_sent": sim.stats.routes.get("fal.callback", 0), "woken": woken}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--run-seconds", type=float, default=20.0)
    args = parser.parse_args()
    report = asyncio.run(run(args.jobs, args.run_seconds))
    print(f"{args.jobs} jobs, each running {args.run_seconds:g} s at the simulator, in {report['run']['wall_s']:.1f} s wall; "
          f"{report['run']['callbacks_sent']:.0f} callbacks sent, {report['run']['woken']} jobs woken by one; "
          f"{report['run']['downloads_per_job']:.2f} downloads/job")
    print("| mode | jobs | succeeded | submit/job | status/job | result/job | provider requests/job |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("webhooks", "polling"):
        r = report[mode]
        print(f"| {mode} | {r['jobs']:.0f} | {r['succeeded']:.0f} | {r['submit']:.2f} | {r['status']:.2f} | "
              f"{r['result']:.2f} | {r['provider_requests_per_job']:.2f} |")


if __name__ == "__main__":
    main()
