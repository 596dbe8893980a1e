#!/usr/bin/env python3
"""Load on one daemon: concurrent credential reads over the API and proxied
HTTPS requests through `authsome run`, for LOAD_SECONDS (default 60).

Half the clients (25 of 50 by default) read a credential with
`GET /v1/connections/echo/default?show_secret=true`; the other half send
HTTPS keep-alive GETs to a local echo server through the proxy, which
intercepts TLS and injects the key. Prints throughput, p50/p99 latency and
errors for each, and the daemon's resident memory before and after. A
warm-up of LOAD_WARMUP seconds (default 10) with the same clients comes first,
so one-time growth (connection pools, buffers, the proxy's leaf certificate)
is not taken for a leak; then LOAD_ROUNDS measured rounds (default 1) run on
the same daemon, each with its memory before and after.
Also measures the API read alone (1 client, then 8) for p50 and reads/s.

Targets on a 2-core machine: 0 errors; RSS stable within 10 %; API read p50
<= 0.5 ms and >= 10 000 reads/s.
"""
import json
import os
import subprocess
import tempfile
import threading

from benchlib import binary, free_port

SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
ROUNDS = int(os.environ.get("LOAD_ROUNDS", "1"))
WARMUP = int(os.environ.get("LOAD_WARMUP", "10"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "50"))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    authsome, echo_bin = binary("authsome"), binary("authsome-echo")
    load, bench = binary("authsome-load"), binary("authsome-bench-proxy")
    tmp = tempfile.mkdtemp(prefix="authsome-load-")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "AUTHSOME_HOME": os.path.join(tmp, "home"),
           "AUTHSOME_PORT": str(port), "XDG_RUNTIME_DIR": tmp}
    echo = subprocess.Popen([echo_bin, tmp], stdout=subprocess.PIPE)
    info = json.loads(echo.stdout.readline())
    run = lambda *a, **k: subprocess.run([authsome, *a], env=env, check=True, capture_output=True, **k)
    try:
        run("init", "--key-backend", "file")
        with open(os.path.join(tmp, "home", "config.toml"), "a") as f:
            f.write(f'\n[proxy]\nextra_ca_file = "{info["ca_file"]}"\n')
        provider = {"name": "echo", "display_name": "Echo", "auth_type": "api_key", "flow": "api_key",
                    "host_url": info["https"], "api_key": {"header_name": "X-Api-Key", "header_prefix": ""},
                    "export": {"ECHO_KEY": "api_key"}}
        path = os.path.join(tmp, "echo.json")
        with open(path, "w") as f:
            json.dump(provider, f)
        run("register", path)
        run("login", "echo", "--stdin", input=b"load-key")
        with open(os.path.join(tmp, "home", "daemon.json")) as f:
            pid = json.load(f)["pid"]
        with open(os.path.join(tmp, "home", "daemon.token")) as f:
            token = f.read().strip()
        for clients in (1, 8):
            r = json.loads(subprocess.run([load, str(port), token, "echo", str(clients), "5"], check=True, capture_output=True).stdout)
            print(f"API credential read, {clients} client(s), 5 s: {r['rps']:.0f} reads/s, p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, errors {r['errors']}")
        half = CLIENTS // 2
        start = rss_mb(pid)
        if WARMUP > 0:
            mixed(load, bench, port, token, info, run, pid, half, WARMUP, "Warm-up")
        for round_no in range(1, ROUNDS + 1):
            mixed(load, bench, port, token, info, run, pid, half, SECONDS, f"Round {round_no}")
        print(f"daemon RSS over the whole run: {start:.1f} MB at start, {rss_mb(pid):.1f} MB at the end")
        run("daemon", "stop")
    finally:
        echo.kill()


def mixed(load, bench, port, token, info, run, pid, half, seconds, label):
    """One round of API readers and proxied clients at once."""
    before = rss_mb(pid)
    results = {}

    def api():
        out = subprocess.run([load, str(port), token, "echo", str(half), str(seconds)], check=True, capture_output=True)
        results["api"] = json.loads(out.stdout)

    def proxied():
        url = f"https://{info['https']}/v1/load"
        out = run("run", "--", "sh", "-c", f'exec "{bench}" "{url}" {CLIENTS - half} {seconds} "$SSL_CERT_FILE" "$HTTPS_PROXY"')
        results["proxy"] = json.loads(out.stdout)

    threads = [threading.Thread(target=api), threading.Thread(target=proxied)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = rss_mb(pid)
    a, p = results["api"], results["proxy"]
    print(f"{label}: {CLIENTS} clients for {seconds} s against one daemon:")
    print(f"  API reads  ({half} clients): {a['rps']:.0f}/s, p50 {a['p50_ms']:.3f} ms, p99 {a['p99_ms']:.3f} ms, errors {a['errors']}")
    print(f"  proxied    ({CLIENTS - half} clients): {p['rps']:.0f}/s, p50 {p['p50_ms']:.3f} ms, p99 {p['p99_ms']:.3f} ms, errors 0 (any error aborts the client)")
    print(f"  daemon RSS: {before:.1f} MB before, {after:.1f} MB after ({(after - before) / before:+.1%})")


if __name__ == "__main__":
    main()
