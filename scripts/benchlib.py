"""Helpers shared by the benchmark scripts."""
import os
import socket
import sys

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
