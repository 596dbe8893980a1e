#!/usr/bin/env python3
"""Moving in and moving house, timed: `import` of N keys from a .env file,
`rekey` of a home with P profiles of K API keys each, and `backup` and
`restore` of that home (the age passphrase work, scrypt, is most of these).

Usage: bench_moving.py [P] [K]   (default 4 profiles x 50 keys)
Uses the release binary when built, else the debug one.
"""
import os
import subprocess
import sys
import tempfile
import time

from benchlib import binary, free_port

P = int(sys.argv[1]) if len(sys.argv) > 1 else 4
K = int(sys.argv[2]) if len(sys.argv) > 2 else 50


def home(tmp, name):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": tmp,
        "AUTHSOME_HOME": os.path.join(tmp, name),
        "AUTHSOME_PORT": str(free_port()),
        "XDG_RUNTIME_DIR": tmp,
    }


def timed(label, cmd, env, stdin=None, cwd=None, ok=(0,)):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, input=stdin, capture_output=True, cwd=cwd)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode not in ok:
        sys.exit(f"{label} failed ({r.returncode}): {r.stderr.decode()}")
    print(f"{label}: {ms:.0f} ms")
    return ms


def main():
    exe = binary("authsome")
    tmp = tempfile.mkdtemp(prefix="authsome-bench-moving-")
    env = home(tmp, "home")
    subprocess.run([exe, "init", "--key-backend", "file"], env=env, check=True, capture_output=True)
    # K custom API-key providers, so one .env file holds K keys.
    for i in range(K):
        path = os.path.join(tmp, f"p{i}.json")
        with open(path, "w") as f:
            f.write(
                f'{{"name":"bench{i}","display_name":"Bench {i}","auth_type":"api_key",'
                f'"flow":"api_key","host_url":"api.bench{i}.test",'
                f'"api_key":{{"header_name":"X-Api-Key","header_prefix":"","env_var":"BENCH{i}_API_KEY"}},'
                f'"export":{{"BENCH{i}_API_KEY":"api_key"}}}}'
            )
        subprocess.run([exe, "register", path], env=env, check=True, capture_output=True)
    project = os.path.join(tmp, "project")
    os.mkdir(project)
    profiles = ["default"] + [f"p{j}" for j in range(1, P)]
    for j, profile in enumerate(profiles):
        if profile != "default":
            subprocess.run([exe, "profile", "create", profile], env=env, check=True, capture_output=True)
        with open(os.path.join(project, ".env"), "w") as f:
            for i in range(K):
                f.write(f"BENCH{i}_API_KEY=bench-key-{j}-{i}-abcdefghijklmnop\n")
        timed(f"import {K} keys into profile {profile}",
              [exe, "--profile", profile, "import"], env, cwd=project)
    subprocess.run([exe, "run", "--no-contain", "--", "true"], env=env, capture_output=True)
    n = P * K
    timed(f"rekey ({P} profiles, {n} keys, daemon running)", [exe, "rekey"], env)
    timed(f"rekey again ({n} keys, no daemon)", [exe, "rekey"], env)
    backup = os.path.join(tmp, "bench.age")
    timed(f"backup ({n} keys)", [exe, "backup", backup, "--stdin"], env, stdin=b"bench passphrase 123\n")
    print(f"backup file: {os.path.getsize(backup)} bytes")
    new = home(tmp, "new")
    subprocess.run([exe, "init", "--key-backend", "file"], env=new, check=True, capture_output=True)
    timed(f"restore ({n} keys) into a new home", [exe, "restore", backup, "--stdin"], new,
          stdin=b"bench passphrase 123\n")
    for e in (env, new):
        subprocess.run([exe, "daemon", "stop"], env=e, capture_output=True)


if __name__ == "__main__":
    main()
