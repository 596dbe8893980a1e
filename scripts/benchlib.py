"""Helpers shared by the benchmark scripts."""
import os
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary(name):
    """The newest build of `name`, release or debug."""
    paths = [os.path.join(ROOT, "target", p, name) for p in ("release", "debug")]
    paths = [p for p in paths if os.path.exists(p)]
    if not paths:
        sys.exit(f"build first: cargo build --release --bins ({name} missing)")
    return max(paths, key=os.path.getmtime)


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BENCH_KEY = "sk-bench-abcdefghijklmnopqrstuvwxyz012345"


def home_with_key(exe):
    """A temp home on a free port whose daemon holds an OpenAI key
    (BENCH_KEY); returns the environment that reaches it."""
    tmp = tempfile.mkdtemp(prefix="authsome-bench-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": tmp,
        "AUTHSOME_HOME": os.path.join(tmp, "home"),
        "AUTHSOME_PORT": str(free_port()),
        "XDG_RUNTIME_DIR": tmp,
    }
    subprocess.run([exe, "login", "openai", "--stdin"], input=BENCH_KEY.encode(),
                   env=env, check=True, capture_output=True)
    return env
