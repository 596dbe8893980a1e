#!/usr/bin/env python3
"""Throughput and latency of `authsome run`'s proxy.

Starts an HTTPS echo server (authsome-echo) and a daemon in a temp home with
an API-key provider for the echo host, then drives HTTPS keep-alive GETs with
authsome-bench-proxy: directly, and through `authsome run` (the proxy
intercepts TLS and injects the key), with 1 and 8 connections. Also times
`authsome run -- true`. Uses release binaries when built.

Targets on a 2-core machine: proxied throughput >= 70 % of direct, added p50
latency <= 0.3 ms, `authsome run -- true` p50 <= 20 ms, and throughput with
per-request activity records >= 95 % of throughput without them.
"""
import json
import os
import statistics
import subprocess
import tempfile
import time

from benchlib import binary, free_port

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))


def main():
    authsome, echo_bin, bench = binary("authsome"), binary("authsome-echo"), binary("authsome-bench-proxy")
    tmp = tempfile.mkdtemp(prefix="authsome-bench-proxy-")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "AUTHSOME_HOME": os.path.join(tmp, "home"),
           "AUTHSOME_PORT": str(free_port()), "XDG_RUNTIME_DIR": tmp}
    echo = subprocess.Popen([echo_bin, tmp], stdout=subprocess.PIPE)
    info = json.loads(echo.stdout.readline())
    try:
        run = lambda *a, **k: subprocess.run([authsome, *a], env=env, check=True, capture_output=True, **k)
        run("init", "--key-backend", "file")
        with open(os.path.join(tmp, "home", "config.toml"), "a") as f:
            f.write(f'\n[proxy]\nextra_ca_file = "{info["ca_file"]}"\n')
        provider = {"name": "echo", "display_name": "Echo", "auth_type": "api_key", "flow": "api_key",
                    "host_url": info["https"], "api_key": {"header_name": "X-Api-Key", "header_prefix": ""},
                    "export": {}}
        path = os.path.join(tmp, "echo.json")
        with open(path, "w") as f:
            json.dump(provider, f)
        run("register", path)
        run("login", "echo", "--stdin", input=b"bench-key")
        url = f"https://{info['https']}/v1/bench"
        rows = []
        for conns in (1, 8):
            direct = json.loads(subprocess.run([bench, url, str(conns), str(SECONDS), info["ca_file"]],
                                               check=True, capture_output=True).stdout)
            proxied = json.loads(run("run", "--", "sh", "-c",
                                     f'exec "{bench}" "{url}" {conns} {SECONDS} "$SSL_CERT_FILE" "$HTTPS_PROXY"').stdout)
            rows.append((conns, direct, proxied))
        samples = []
        for _ in range(10):
            run("run", "--", "true")
        for _ in range(200):
            t0 = time.perf_counter()
            run("run", "--", "true")
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        print(f"HTTPS keep-alive GETs for {SECONDS} s each ({os.path.basename(os.path.dirname(authsome))} build)")
        print(f"{'conns':>5} {'direct rps':>11} {'proxied rps':>12} {'ratio':>6} {'direct p50':>11} {'proxied p50':>12} {'added p50':>10} {'direct p99':>11} {'proxied p99':>12}")
        for conns, d, p in rows:
            print(f"{conns:>5} {d['rps']:>11.0f} {p['rps']:>12.0f} {p['rps'] / d['rps']:>6.0%} {d['p50_ms']:>9.3f}ms {p['p50_ms']:>10.3f}ms "
                  f"{p['p50_ms'] - d['p50_ms']:>8.3f}ms {d['p99_ms']:>9.3f}ms {p['p99_ms']:>10.3f}ms")
        print(f"authsome run -- true, 200 runs: p50 {samples[100]:.2f} ms, p99 {samples[197]:.2f} ms, "
              f"mean {statistics.mean(samples):.2f} ms")
        # Activity (one batched audit event per proxied request) on, then off.
        proxied = lambda: json.loads(run("run", "--", "sh", "-c",
                                         f'exec "{bench}" "{url}" 8 {SECONDS} "$SSL_CERT_FILE" "$HTTPS_PROXY"').stdout)
        config = os.path.join(tmp, "home", "config.toml")
        with open(config) as f:
            base = f.read()
        results = {True: [], False: []}
        for activity in (True, False, True, False, True, False):
            run("daemon", "stop")
            with open(config, "w") as f:
                f.write(base if activity else base + "activity = false\n")
            results[activity].append(proxied()["rps"])
        on, off = statistics.median(results[True]), statistics.median(results[False])
        print(f"activity, 8 conns, 3 runs each alternating: on {on:.0f} rps, off {off:.0f} rps, "
              f"on/off {on / off:.1%} (target >= 95 %)")
        run("daemon", "stop")
    finally:
        echo.kill()


if __name__ == "__main__":
    main()
