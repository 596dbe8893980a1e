#!/usr/bin/env python3
"""Start-up cost of a run: `authsome run -- true`, contained and not.

Starts a daemon in a temp home with one API key stored, then runs
`authsome run -- true` N times (default 200) with the Landlock sandbox
(the default), with `--egress proxy`, and with `--no-contain`,
interleaved, and prints
p50 / p99 / mean of each in milliseconds. Uses the release binary when
built, else the debug one. Target on a 2-core machine: p50 <= 20 ms.
"""
import os
import statistics
import subprocess
import sys
import time

from benchlib import binary, home_with_key

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def summary(samples):
    samples = sorted(samples)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    return f"p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms, mean {statistics.mean(samples):.2f} ms"


def main():
    exe = binary("authsome")
    profile = os.path.basename(os.path.dirname(exe))
    env = home_with_key(exe)
    variants = {
        "contained": [exe, "run", "--", "true"],
        "contained --egress proxy": [exe, "run", "--egress", "proxy", "--", "true"],
        "--no-contain": [exe, "run", "--no-contain", "--", "true"],
    }
    for cmd in variants.values():
        for _ in range(10):  # warm-up
            subprocess.run(cmd, env=env, check=True, capture_output=True)
    samples = {name: [] for name in variants}
    for _ in range(N):
        for name, cmd in variants.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            samples[name].append((time.perf_counter() - t0) * 1000)
    subprocess.run([exe, "daemon", "stop"], env=env, capture_output=True)
    for name, s in samples.items():
        print(f"authsome run -- true, {name} ({profile} build), {N} runs: {summary(s)}")


if __name__ == "__main__":
    main()
