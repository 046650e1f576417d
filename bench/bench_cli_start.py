"""CLI start-up benchmark (issue 11): ``videogen models`` / ``estimate`` / ``--help`` against a bare
``python -c "import httpx, pydantic"``.

Each command is spawned ``--rounds`` times as a fresh process (``python -m agent_tools.cli ...``, what
the ``videogen`` script runs), interleaved with the baseline so a busy machine slows both alike; the
report gives the median wall time and CPU time (user + system; steadier on a shared machine) of
each and its ratio to the baseline's median. The project's bytecode is compiled first, as installing
it does, so neither side pays for compiling its sources.

Run:  .venv/bin/python bench/bench_cli_start.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ("baseline: import httpx, pydantic", [sys.executable, "-c", "import httpx, pydantic"])
COMMANDS = [
    ("videogen models", [sys.executable, "-m", "agent_tools.cli", "models"]),
    ("videogen estimate", [sys.executable, "-m", "agent_tools.cli", "estimate", "pika_text_to_video", "--prompt", "x"]),
    ("videogen --help", [sys.executable, "-m", "agent_tools.cli", "--help"]),
]


CPU: dict[str, list[float]] = {}


def spawn(argv: list[str], env: dict[str, str], name: str = "") -> float:
    """Wall time of one run; its CPU time (user + system) is kept in ``CPU[name]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def compile_project() -> None:
    """Write the project's bytecode first, as installing a wheel does.

    Without it a machine with PYTHONDONTWRITEBYTECODE set (or a read-only checkout) compiles every
    project module from source on every spawn, while the baseline's httpx and pydantic were compiled
    when they were installed: the ratio would measure the compiler, not the start-up.
    """
    for package in ("agent_tools", "bots"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main(rounds: int) -> None:
    compile_project()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CONFIG_HOME": tmp, "XDG_DATA_HOME": tmp, "VIDEOGEN_DB": f"{tmp}/v.db"}
        env.pop("VIDEOGEN_CONFIG", None)
        times: dict[str, list[float]] = {name: [] for name, _ in [BASELINE, *COMMANDS]}
        for name, argv in [BASELINE, *COMMANDS]:  # warm the file cache once
            spawn(argv, env)
        for _ in range(rounds):
            for name, argv in COMMANDS:
                times[BASELINE[0]].append(spawn(BASELINE[1], env, BASELINE[0]))
                times[name].append(spawn(argv, env, name))
    base = statistics.median(times[BASELINE[0]])
    base_cpu = statistics.median(CPU[BASELINE[0]])
    print(f"CLI start-up, median of {rounds} spawns each (baseline spawned before every command)")
    print(f"{'':36}{'wall ms':>8}{'/ baseline':>12}{'CPU ms':>8}{'/ baseline':>12}")
    for name, values in times.items():
        median, cpu = statistics.median(values), statistics.median(CPU[name])
        print(f"{name:36}{median * 1000:>8.0f}{median / base:>12.2f}{cpu * 1000:>8.0f}{cpu / base_cpu:>12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    main(parser.parse_args().rounds)
