#!/usr/bin/env python3
"""Credential read latency of the whole CLI process.

Starts a daemon in a temp home, stores an API key, then runs
`authsome get openai --field api_key --show-secret` N times (default 200)
and prints p50 / p99 / mean in milliseconds. Uses the release binary when
built, else the debug one. Target on a 2-core machine: p50 <= 5 ms.
"""
import os
import statistics
import subprocess
import sys
import time

from benchlib import BENCH_KEY, binary, home_with_key

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def main():
    exe = binary("authsome")
    profile = os.path.basename(os.path.dirname(exe))
    env = home_with_key(exe)
    key = BENCH_KEY
    cmd = [exe, "get", "openai", "--field", "api_key", "--show-secret"]
    for _ in range(10):  # warm-up
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    samples = []
    for _ in range(N):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, check=True, capture_output=True)
        samples.append((time.perf_counter() - t0) * 1000)
        assert out.stdout.decode().strip() == key
    subprocess.run([exe, "daemon", "stop"], env=env, capture_output=True)
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"authsome get --show-secret ({profile} build), {N} runs: "
          f"p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms, mean {statistics.mean(samples):.2f} ms")


if __name__ == "__main__":
    main()
