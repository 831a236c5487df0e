"""Run a command several times in a row while other processes keep every core busy.

    python bench/loaded.py [--runs 3] [--busy N] -- make test

Issue 11 asks that the suite pass three times in a row on a machine whose cores are all taken by
someone else: no test may depend on the machine being idle. This starts one busy loop per core
(or ``--busy N``), runs the command ``--runs`` times, stops at the first failure, and prints one
line per run: its exit code, how long it took and the load average meanwhile. The busy loops are
stopped however the runs end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time


def _spin() -> None:  # pragma: no cover - runs in a child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    x = 0
    while True:
        x = (x * 31 + 7) % 1_000_003


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    results = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            what = " ".join(command)
            print(f"==> loaded run {run}/{args.runs} ({args.busy} busy loops): {what}", flush=True)
            code = subprocess.call(command)
            took = time.monotonic() - started
            load = os.getloadavg()
            results.append((run, code, took, load))
            averages = " ".join(f"{value:.1f}" for value in load)
            print(f"==> loaded run {run}: exit {code} in {took:.0f} s, load {averages}", flush=True)
            if code != 0:
                break
    finally:
        for spinner in spinners:
            spinner.terminate()
        for spinner in spinners:
            spinner.join(5)
    print("\nrun  exit  seconds  load(1m 5m 15m)")
    for run, code, took, load in results:
        print(f"{run:>3}  {code:>4}  {took:>7.0f}  {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    failed = [r for r in results if r[1] != 0]
    return 1 if failed or len(results) < args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
