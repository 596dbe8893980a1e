"""Talking to the daemon: find it through ``daemon.json``, make it prove it
knows the home's token before the token goes anywhere, start it when none
answers, and make authenticated requests. Plain HTTP to 127.0.0.1 only,
never through a proxy, never following a redirect."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from ._errors import AuthsomeError, DaemonUnavailable, error_from_code

log = logging.getLogger("authsome_client")

PROFILE_HEADER = "x-authsome-profile"

_HIDDEN_HOME = (
    "Inside `authsome run` the Authsome home is hidden on purpose: the proxy adds "
    "credentials to the command's requests instead. This library is for programs "
    "that run outside `authsome run`."
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect: the answer is handed back as an HTTP error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class _Refused(Exception):
    """Nothing listens on the port."""


def _proof(token: str, port: int, nonce: str) -> str:
    msg = f"authsome-daemon-proof\n{port}\n{nonce}".encode()
    return hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()


def default_home() -> Path:
    """``AUTHSOME_HOME`` when set and non-empty, else ``$HOME/.authsome``."""
    env = os.environ.get("AUTHSOME_HOME")
    if env:
        return Path(env)
    return Path.home() / ".authsome"


class DaemonClient:
    """An authenticated connection to one home's daemon, checked lazily once
    and re-checked once when the daemon stops answering."""

    def __init__(self, home: Path, profile: Optional[str], start: bool, timeout: float) -> None:
        self.home = home
        self.profile = profile
        self.start = start
        self.timeout = timeout
        self.port: Optional[int] = None
        self._token: Optional[str] = None
        self._lock = threading.Lock()

    # -- finding and proving the daemon ------------------------------------

    def _unreadable(self, path: Path, err: OSError) -> DaemonUnavailable:
        return DaemonUnavailable(f"cannot read {path}: {err.strerror or err}. {_HIDDEN_HOME}")

    def _read_info(self) -> Optional[int]:
        """The port in ``daemon.json``, or ``None`` when there is no file."""
        path = self.home / "daemon.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if not self.home.is_dir():
                raise DaemonUnavailable(
                    f"the Authsome home {self.home} does not exist (`authsome login` "
                    f"creates it). {_HIDDEN_HOME}"
                ) from None
            return None
        except OSError as e:
            raise self._unreadable(path, e) from None
        except ValueError:
            return None  # half-written or damaged: treat as no daemon
        port = info.get("port") if isinstance(info, dict) else None
        return port if isinstance(port, int) and 0 < port < 65536 else None

    def _read_token(self) -> str:
        path = self.home / "daemon.token"
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise self._unreadable(path, e) from None
        if not token:
            raise DaemonUnavailable(f"{path} is empty. {_HIDDEN_HOME}")
        return token

    def _probe(self, port: int, token: str) -> bool:
        """True when this home's daemon answers on ``port``, False when
        nothing listens; raises when something else answers."""
        nonce = secrets.token_urlsafe(32)
        url = f"http://127.0.0.1:{port}/health?" + urllib.parse.urlencode({"challenge": nonce})
        impostor = DaemonUnavailable(
            f"something else listens on port {port} of 127.0.0.1: it cannot prove it is "
            f"this home's daemon (it does not know daemon.token); nothing was sent to it. "
            f"Stop it, or set AUTHSOME_PORT and run `authsome daemon start`.",
            "daemon_impostor",
        )
        try:
            with _OPENER.open(url, timeout=min(self.timeout, 5.0)) as resp:
                status, body = resp.status, resp.read(65536)
        except urllib.error.HTTPError as e:
            e.close()
            log.debug("GET /health -> %s", e.code)
            raise impostor from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ConnectionRefusedError):
                log.debug("GET /health -> connection refused")
                return False
            raise DaemonUnavailable(
                f"cannot reach 127.0.0.1:{port} ({reason}); nothing was sent to it"
            ) from None
        log.debug("GET /health -> %s", status)
        try:
            proof = json.loads(body).get("proof")
        except (ValueError, AttributeError):
            proof = None
        if not isinstance(proof, str) or not hmac.compare_digest(
            proof.encode(), _proof(token, port, nonce).encode()
        ):
            raise impostor
        return True

    def _start_daemon(self) -> None:
        binary = os.environ.get("AUTHSOME_BIN") or shutil.which("authsome")
        if not binary:
            raise DaemonUnavailable(
                "no Authsome daemon is running and the `authsome` binary was not found "
                "on PATH (set AUTHSOME_BIN to its path, or run `authsome daemon start`)"
            )
        env = dict(os.environ, AUTHSOME_HOME=str(self.home))
        cmd = [binary, "daemon", "start"]
        log.debug("starting the daemon: %s daemon start", binary)
        try:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                timeout=max(self.timeout, 30.0), check=False,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise DaemonUnavailable(f"cannot start the daemon with {binary}: {e}") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            raise DaemonUnavailable(
                f"`{binary} daemon start` failed (exit {done.returncode})"
                + (f": {stderr}" if stderr else "")
            )

    def _connect(self) -> Tuple[int, str]:
        """Finds (or starts) this home's daemon and proves it; port and token."""
        port = self._read_info()
        if port is not None:
            token = self._read_token()
            if self._probe(port, token):
                return port, token
        elif not os.access(self.home, os.W_OK):
            # e.g. the empty read-only mount that covers the home inside a run
            raise DaemonUnavailable(f"no daemon.json in {self.home}, which is read-only. {_HIDDEN_HOME}")
        if not self.start:
            raise DaemonUnavailable(
                f"no Authsome daemon is running for {self.home}; "
                f"start it with `authsome daemon start`"
            )
        self._start_daemon()
        port = self._read_info()
        if port is None:
            raise DaemonUnavailable(f"the daemon started but {self.home / 'daemon.json'} names no port")
        token = self._read_token()
        if not self._probe(port, token):
            raise DaemonUnavailable(f"the daemon started but does not answer on 127.0.0.1:{port}")
        return port, token

    def _ensure(self, recheck: bool = False) -> Tuple[int, str]:
        with self._lock:
            if recheck or self.port is None or self._token is None:
                self.port, self._token = None, None
                self.port, self._token = self._connect()
            return self.port, self._token

    # -- requests -----------------------------------------------------------

    def _send(self, port: int, token: str, route: str, query: Optional[Mapping[str, str]]) -> Any:
        url = f"http://127.0.0.1:{port}{route}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if self.profile:
            headers[PROFILE_HEADER] = self.profile
        req = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            with e:
                body = e.read(65536)
            log.debug("GET %s -> %s", route, e.code)
            raise self._error(e.code, body) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ConnectionRefusedError):
                log.debug("GET %s -> connection refused", route)
                raise _Refused() from None
            raise DaemonUnavailable(f"no answer from the daemon on 127.0.0.1:{port}: {reason}") from None
        log.debug("GET %s -> %s", route, status)
        try:
            return json.loads(body)
        except ValueError:
            raise AuthsomeError("the daemon's answer is not JSON", "bad_response") from None

    @staticmethod
    def _error(status: int, body: bytes) -> AuthsomeError:
        try:
            data = json.loads(body)
            return error_from_code(str(data["error"]), str(data["message"]))
        except (ValueError, KeyError, TypeError):
            return AuthsomeError(f"the daemon answered HTTP {status}", "http_error")

    def get(self, route: str, query: Optional[Dict[str, str]] = None) -> Any:
        """``GET route`` with the token; the decoded JSON answer. ``route`` must
        already have its segments percent-encoded."""
        port, token = self._ensure()
        try:
            return self._send(port, token, route, query)
        except _Refused:
            pass  # the daemon may have restarted (on another port): check once more
        port, token = self._ensure(recheck=True)
        try:
            return self._send(port, token, route, query)
        except _Refused:
            raise DaemonUnavailable(f"the daemon on 127.0.0.1:{port} stopped answering") from None
