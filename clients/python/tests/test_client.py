"""Tests of authsome_client.

Run: PYTHONPATH=clients/python python3 -m unittest discover -s clients/python/tests -v

Tests against a real daemon need a prepared home (the Rust harness sets
these; a test whose variable is unset is skipped, so the real ~/.authsome is
never used):

- AUTHSOME_HOME, HOME, AUTHSOME_PORT: a home whose daemon runs.
- AUTHSOME_TEST_API_KEY: the key stored for openai (default).
- AUTHSOME_TEST_OAUTH_PROVIDER: an OAuth2 provider whose token expires in seconds.
- AUTHSOME_TEST_BROKEN_PROVIDER: an OAuth2 provider whose refresh is refused.

The other tests use fake daemons and temporary homes and need nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from unittest import mock

# The package next to these tests, unless the harness installed one to test.
if "AUTHSOME_CLIENT_UNDER_TEST" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authsome_client import (  # noqa: E402
    AuthLayer,
    AuthsomeError,
    Connection,
    ConnectionNotFound,
    CredentialUnavailable,
    DaemonUnavailable,
    InvalidInput,
    ProviderNotFound,
    Secret,
    SecretDict,
)
from authsome_client._types import parse_time  # noqa: E402

if "AUTHSOME_CLIENT_UNDER_TEST" in os.environ:
    # The installed package is the one under test, not the source tree.
    _loaded = Path(sys.modules["authsome_client"].__file__).parent
    assert _loaded == Path(os.environ["AUTHSOME_CLIENT_UNDER_TEST"]), _loaded

PROXY_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "all_proxy": "http://127.0.0.1:9",
}


def need(name: str) -> str:
    """The variable's value; skips the test when it is unset."""
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest(f"{name} is not set")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LogCapture(logging.Handler):
    """Every record of the authsome_client logger, at DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.logger = logging.getLogger("authsome_client")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> "LogCapture":
        self.old_level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.old_level)

    def text(self) -> str:
        return "\n".join(self.format(r) + repr(r.args) for r in self.records)


# -- fake servers -------------------------------------------------------------

Reply = Tuple[int, Dict[str, str], bytes]


class FakeServer:
    """An HTTP server on 127.0.0.1 that records each request (path and
    headers) and answers with ``respond(path, headers)``."""

    def __init__(self, respond: Callable[[str, Dict[str, str]], Reply]) -> None:
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers))
                status, extra, body = respond(self.path, headers)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(status: int, value: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


def make_home(port: Optional[int], token: str = "token-left-behind-Jq2mV8xN4tLp0wZr") -> str:
    """A temp home; with a port, a ``daemon.json`` naming it and a token file."""
    home = tempfile.mkdtemp(prefix="authsome-py-")
    if port is not None:
        Path(home, "daemon.json").write_text(
            json.dumps({"pid": os.getpid(), "port": port, "version": "0.1.0"})
        )
        Path(home, "daemon.token").write_text(token + "\n")
    return home


class FakeDaemon(FakeServer):
    """A daemon that proves it knows ``token`` and serves ``routes``
    (path without query -> reply), requiring the token on /v1/."""

    def __init__(self, token: str, routes: Dict[str, Reply]) -> None:
        def respond(path: str, headers: Dict[str, str]) -> Reply:
            route, _, query = path.partition("?")
            if route == "/health":
                nonce = urllib.parse.parse_qs(query)["challenge"][0]
                msg = f"authsome-daemon-proof\n{self.port}\n{nonce}".encode()
                proof = hmac.new(token.encode(), msg, hashlib.sha256).hexdigest()
                return json_reply(200, {"status": "ok", "version": "0.1.0", "proof": proof})
            if headers.get("authorization") != f"Bearer {token}":
                return json_reply(401, {"error": "unauthorized", "message": "missing token"})
            return routes.get(route, json_reply(404, {"error": "not_found", "message": "not found"}))

        super().__init__(respond)


def view(provider: str, auth_type: str, status: str, secrets: Dict[str, str]) -> Dict[str, Any]:
    return {
        "provider": provider, "display_name": provider.title(), "connection": "default",
        "profile": "default", "status": status, "auth_type": auth_type, "scopes": ["repo"],
        "base_url": None, "account": None, "expires_at": "2026-12-06T02:10:15.123456789Z",
        "obtained_at": "2026-12-06T01:10:15Z", "last_refresh_at": None,
        "last_error": "invalid_grant" if status != "connected" else None,
        "created_at": "2026-01-01T00:00:00+01:00", "updated_at": "2026-01-01T00:00:00Z",
        "secrets": secrets,
    }


# -- against the harness's daemon ---------------------------------------------


class RealDaemonTests(unittest.TestCase):
    """Against the running daemon of the prepared home."""

    def setUp(self) -> None:
        need("AUTHSOME_HOME")
        need("AUTHSOME_PORT")

    def test_unknown_provider_and_connection(self) -> None:
        auth = AuthLayer()
        with self.assertRaises(ProviderNotFound) as cm:
            auth.get_access_token("no-such-provider")
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("provider_not_found", 4))
        self.assertTrue(str(cm.exception))
        with self.assertRaises(ConnectionNotFound) as cm2:
            auth.get_access_token("openai", connection="nope")
        self.assertEqual(cm2.exception.exit_code, 3)

    def test_api_key_token_headers_and_export(self) -> None:
        key = need("AUTHSOME_TEST_API_KEY")
        auth = AuthLayer()
        token = auth.get_access_token("openai")
        self.assertIsInstance(token, Secret)
        self.assertEqual(token, key)
        self.assertEqual(f"Bearer {token}", "Bearer " + key)
        self.assertEqual(auth.get_auth_headers("openai"), {"Authorization": "Bearer " + key})
        self.assertEqual(auth.export("openai"), {"OPENAI_API_KEY": key})
        conn = auth.get_connection("openai")
        self.assertEqual((conn.provider, conn.connection, conn.auth_type), ("openai", "default", "api_key"))
        self.assertIsNotNone(conn.created_at)

    def test_list_connections_includes_openai(self) -> None:
        pairs = {(c.provider, c.connection) for c in AuthLayer().list_connections()}
        self.assertIn(("openai", "default"), pairs)

    def test_oauth_token_is_refreshed(self) -> None:
        provider = need("AUTHSOME_TEST_OAUTH_PROVIDER")
        auth = AuthLayer()
        first = auth.get_access_token(provider)
        expires_at = auth.get_connection(provider).expires_at
        self.assertIsNotNone(expires_at)
        wait = (expires_at - datetime.now(timezone.utc)).total_seconds() + 1
        time.sleep(min(max(wait, 0), 30))
        second = auth.get_access_token(provider)
        self.assertTrue(first and second)
        self.assertNotEqual(str(first), str(second))
        self.assertEqual(auth.get_auth_headers(provider), {"Authorization": f"Bearer {second}"})

    def test_refused_refresh_is_credential_unavailable(self) -> None:
        provider = need("AUTHSOME_TEST_BROKEN_PROVIDER")
        with self.assertRaises(CredentialUnavailable) as cm:
            AuthLayer().get_access_token(provider)
        self.assertEqual(cm.exception.exit_code, 5)
        self.assertTrue(cm.exception.message)

    def test_no_secret_in_repr_str_or_logs(self) -> None:
        key = need("AUTHSOME_TEST_API_KEY")
        oauth = os.environ.get("AUTHSOME_TEST_OAUTH_PROVIDER")
        shown: List[str] = []
        with LogCapture() as logs:
            auth = AuthLayer()
            token = auth.get_access_token("openai")
            headers = auth.get_auth_headers("openai")
            exported = auth.export("openai")
            shown += [repr(auth), str(auth), repr(token), repr(headers), str(headers),
                      repr(exported), str(exported), repr(auth.get_connection("openai")),
                      repr(auth.list_connections()), repr([token]), repr({"t": token})]
            secrets = [key]
            if oauth:
                secrets.append(str(auth.get_access_token(oauth)))
                shown += [repr(auth.get_auth_headers(oauth)), repr(auth.export(oauth)),
                          repr(auth.get_connection(oauth))]
        self.assertEqual(exported, {"OPENAI_API_KEY": key})
        self.assertTrue(logs.records)
        shown.append(logs.text())
        for secret in secrets:
            for text in shown:
                self.assertNotIn(secret, text)
        self.assertEqual(repr(token), "Secret('***')")

    def test_proxy_variables_are_ignored(self) -> None:
        with mock.patch.dict(os.environ, PROXY_ENV):
            auth = AuthLayer()
            self.assertIsInstance(auth.list_connections(), list)
            if os.environ.get("AUTHSOME_TEST_API_KEY"):
                self.assertEqual(auth.get_access_token("openai"), os.environ["AUTHSOME_TEST_API_KEY"])


# -- impostors, no daemon, starting ------------------------------------------


class ImpostorTests(unittest.TestCase):
    """Something on the port that cannot prove it knows daemon.token gets
    the challenge and nothing else."""

    def check(self, reply: Reply, start: bool = False) -> FakeServer:
        server = FakeServer(lambda path, headers: reply)
        self.addCleanup(server.close)
        home = make_home(server.port)
        self.addCleanup(shutil.rmtree, home, True)
        with mock.patch.dict(os.environ, {"AUTHSOME_BIN": "/nonexistent/authsome"}):
            with self.assertRaises(DaemonUnavailable) as cm:
                AuthLayer(home=home, start=start).list_connections()
        self.assertIn(f"something else listens on port {server.port}", str(cm.exception))
        self.assertIn("nothing was sent", str(cm.exception))
        self.assertEqual(cm.exception.exit_code, 9)
        self.assertTrue(server.requests)
        for path, headers in server.requests:
            self.assertNotIn("authorization", headers)
            self.assertTrue(path.startswith("/health?challenge="), path)
        return server

    def test_wrong_proof(self) -> None:
        self.check(json_reply(200, {"status": "ok", "version": "x", "proof": "00"}))

    def test_wrong_proof_even_when_start_is_allowed(self) -> None:
        self.check(json_reply(200, {"status": "ok", "version": "x", "proof": "00"}), start=True)

    def test_no_proof(self) -> None:
        self.check(json_reply(200, {"status": "ok", "version": "x"}))

    def test_not_json(self) -> None:
        self.check((200, {"Content-Type": "text/html"}, b"<html>hello</html>"))

    def test_http_error(self) -> None:
        self.check(json_reply(500, {"error": "internal", "message": "boom"}))

    def test_redirect_is_not_followed(self) -> None:
        self.check((302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""))


class NoDaemonTests(unittest.TestCase):
    def test_no_daemon_json(self) -> None:
        home = make_home(None)
        self.addCleanup(shutil.rmtree, home, True)
        with self.assertRaises(DaemonUnavailable) as cm:
            AuthLayer(home=home, start=False).get_access_token("openai")
        self.assertIn(home, str(cm.exception))

    def test_stale_daemon_json(self) -> None:
        home = make_home(free_port())
        self.addCleanup(shutil.rmtree, home, True)
        with self.assertRaises(DaemonUnavailable):
            AuthLayer(home=home, start=False).list_connections()

    def test_missing_home_explains_authsome_run(self) -> None:
        with self.assertRaises(DaemonUnavailable) as cm:
            AuthLayer(home="/nonexistent/authsome-home", start=False).list_connections()
        self.assertIn("/nonexistent/authsome-home", str(cm.exception))
        self.assertIn("authsome run", str(cm.exception))

    def test_read_only_home_without_daemon_json_explains_authsome_run(self) -> None:
        home = make_home(None)
        self.addCleanup(shutil.rmtree, home, True)
        with mock.patch("authsome_client._daemon.os.access", return_value=False):
            with self.assertRaises(DaemonUnavailable) as cm:
                AuthLayer(home=home).list_connections()
        self.assertIn("authsome run", str(cm.exception))

    def test_missing_binary(self) -> None:
        home = make_home(None)
        self.addCleanup(shutil.rmtree, home, True)
        with mock.patch.dict(os.environ, {"AUTHSOME_BIN": "/nonexistent/authsome"}):
            with self.assertRaises(DaemonUnavailable):
                AuthLayer(home=home).list_connections()

    def test_starts_and_restarts_the_daemon(self) -> None:
        binary = os.environ.get("AUTHSOME_BIN") or shutil.which("authsome")
        if not binary:
            self.skipTest("no authsome binary on PATH")
        tmp = tempfile.mkdtemp(prefix="authsome-py-start-")
        home = os.path.join(tmp, "home")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = {"AUTHSOME_HOME": home, "HOME": tmp, "AUTHSOME_PORT": str(free_port())}
        # Every command gets this home explicitly: the cleanup runs after the
        # patched environment is restored, and must not stop another daemon.
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("AUTHSOME_MASTER_KEY", "AUTHSOME_PROFILE")}
        full_env.update(env)

        def run(*args: str) -> "subprocess.CompletedProcess[bytes]":
            return subprocess.run([binary, *args], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=60, env=full_env)

        with mock.patch.dict(os.environ, env):
            os.environ.pop("AUTHSOME_MASTER_KEY", None)
            os.environ.pop("AUTHSOME_PROFILE", None)
            self.assertEqual(run("init", "--key-backend", "file").returncode, 0)
            self.addCleanup(run, "daemon", "stop")
            auth = AuthLayer()
            self.assertEqual(auth.list_connections(), [])
            self.assertEqual(run("daemon", "stop").returncode, 0)
            # The next call finds the daemon gone and starts it again.
            self.assertEqual(auth.list_connections(), [])
            with self.assertRaises(ProviderNotFound):
                auth.get_connection("no-such-provider")


# -- a fake daemon that proves itself -----------------------------------------


class FakeDaemonTests(unittest.TestCase):
    TOKEN = "daemon-token-abcdefghijklmnopqrstuvwxyz"
    ACCESS = "gho_access-token-secret-0123456789"

    def daemon(self, routes: Dict[str, Reply], profile: Optional[str] = None) -> Tuple[FakeDaemon, AuthLayer]:
        fake = FakeDaemon(self.TOKEN, routes)
        self.addCleanup(fake.close)
        home = make_home(fake.port, self.TOKEN)
        self.addCleanup(shutil.rmtree, home, True)
        return fake, AuthLayer(home=home, profile=profile, start=False)

    def test_oauth_token_headers_profile_and_encoding(self) -> None:
        fake, auth = self.daemon({
            "/v1/connections/github/work%2Fx": json_reply(200, view("github", "oauth2", "connected", {
                "access_token": self.ACCESS, "refresh_token": "r"})),
            "/v1/connections/github/default/headers": json_reply(200, {"headers": {"Authorization": f"Bearer {self.ACCESS}"}}),
            "/v1/export": json_reply(200, {"vars": [{"name": "GITHUB_TOKEN", "value": self.ACCESS, "provider": "github", "connection": "default"}]}),
        }, profile="work")
        with mock.patch.dict(os.environ, PROXY_ENV):
            token = auth.get_access_token("github", connection="work/x")
            self.assertEqual(token, self.ACCESS)
            headers = auth.get_auth_headers("github")
            exported = auth.export("github")
        self.assertIsInstance(headers, SecretDict)
        self.assertEqual(headers, {"Authorization": f"Bearer {self.ACCESS}"})
        self.assertEqual(exported, {"GITHUB_TOKEN": self.ACCESS})
        self.assertEqual(repr(headers), "{'Authorization': '***'}")
        self.assertEqual(str(exported), "{'GITHUB_TOKEN': '***'}")
        self.assertEqual(fake.requests[0][0].split("?")[0], "/health")
        self.assertNotIn("authorization", fake.requests[0][1])
        for path, h in fake.requests[1:]:
            self.assertEqual(h["x-authsome-profile"], "work")
        self.assertIn("show_secret=true", fake.requests[1][0])
        # Only the fields that authenticate: the refresh token stays in the daemon.
        self.assertIn("fields=access_token%2Capi_key", fake.requests[1][0])
        self.assertIn("provider=github&connection=default", fake.requests[-1][0])
        self.assertEqual(sum(p.startswith("/health") for p, _ in fake.requests), 1, "checked once")
        self.assertNotIn(self.TOKEN, repr(auth) + str(auth))
        self.assertIn(str(fake.port), repr(auth))

    def test_connection_metadata(self) -> None:
        _, auth = self.daemon({"/v1/connections/github/default": json_reply(
            200, view("github", "oauth2", "connected", {"access_token": "***"}))})
        conn = auth.get_connection("github")
        self.assertIsInstance(conn, Connection)
        self.assertEqual(conn.scopes, ["repo"])
        self.assertEqual(conn.expires_at, datetime(2026, 12, 6, 2, 10, 15, 123456, timezone.utc))
        self.assertEqual(conn.created_at, datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc))
        self.assertIsNone(conn.last_refresh_at)
        self.assertNotIn("secrets", repr(conn))

    def test_expired_without_secret_is_credential_unavailable(self) -> None:
        _, auth = self.daemon({"/v1/connections/github/default": json_reply(
            200, view("github", "oauth2", "expired", {}))})
        with self.assertRaises(CredentialUnavailable) as cm:
            auth.get_access_token("github")
        self.assertIn("expired", str(cm.exception))

    def test_error_codes(self) -> None:
        cases = {
            "refresh_failed": (CredentialUnavailable, 5),
            "credential_missing": (CredentialUnavailable, 5),
            "profile_not_found": (InvalidInput, 2),
            "invalid_input": (InvalidInput, 2),
            "daemon_unavailable": (DaemonUnavailable, 9),
            "something_new": (AuthsomeError, 1),
        }
        for code, (cls, exit_code) in cases.items():
            _, auth = self.daemon({"/v1/connections": json_reply(422, {"error": code, "message": f"msg {code}"})})
            with self.assertRaises(cls) as cm:
                auth.list_connections()
            self.assertEqual((cm.exception.code, cm.exception.exit_code, str(cm.exception)),
                             (code, exit_code, f"msg {code}"))

    def test_redirect_from_daemon_is_not_followed(self) -> None:
        target = FakeServer(lambda p, h: json_reply(200, {"providers": []}))
        self.addCleanup(target.close)
        _, auth = self.daemon({"/v1/connections": (302, {"Location": f"http://127.0.0.1:{target.port}/x"}, b"")})
        with self.assertRaises(AuthsomeError):
            auth.list_connections()
        self.assertEqual(target.requests, [])

    def test_list_skips_providers_without_connections(self) -> None:
        _, auth = self.daemon({"/v1/connections": json_reply(200, {"profile": "default", "providers": [
            {"name": "github", "display_name": "GitHub", "auth_type": "oauth2", "status": "connected",
             "connections": [{"connection": "default", "status": "connected", "expires_at": "2026-12-06T02:10:15Z"},
                             {"connection": "work", "status": "invalid", "expires_at": None, "last_error": "invalid_grant"}]},
            {"name": "openai", "display_name": "OpenAI", "auth_type": "api_key", "status": "available", "connections": []},
        ]})})
        got = [(c.provider, c.connection, c.status, c.last_error) for c in auth.list_connections()]
        self.assertEqual(got, [("github", "default", "connected", None), ("github", "work", "invalid", "invalid_grant")])

    def test_malformed_answers_are_authsome_errors(self) -> None:
        _, auth = self.daemon({
            "/v1/connections": json_reply(200, {"providers": [{"connections": [{}]}]}),
            "/v1/export": json_reply(200, {"vars": [{"name": "X", "value": None}]}),
            "/v1/connections/github/default": (200, {}, b"not json"),
        })
        for call in (auth.list_connections, lambda: auth.export("github"),
                     lambda: auth.get_connection("github")):
            with self.assertRaises(AuthsomeError) as cm:
                call()
            self.assertEqual(cm.exception.code, "bad_response")

    def test_bad_names_are_refused_before_sending(self) -> None:
        fake, auth = self.daemon({})
        for name in ["", ".", ".."]:
            with self.assertRaises(InvalidInput):
                auth.get_access_token(name)
        self.assertEqual(fake.requests, [])


class ValueTests(unittest.TestCase):
    def test_secret_formats_but_hides_its_repr(self) -> None:
        s = Secret("sk-hidden")
        self.assertEqual(f"Bearer {s}", "Bearer sk-hidden")
        self.assertEqual(str(s), "sk-hidden")
        self.assertEqual(repr(s), "Secret('***')")
        self.assertNotIn("sk-hidden", repr([s]))

    def test_parse_time(self) -> None:
        self.assertEqual(parse_time("2026-12-06T02:10:15.123456Z"),
                         datetime(2026, 12, 6, 2, 10, 15, 123456, timezone.utc))
        self.assertEqual(parse_time("2026-12-06T02:10:15-02:30"),
                         datetime(2026, 12, 6, 4, 40, 15, tzinfo=timezone.utc))
        self.assertEqual(parse_time("2026-12-06T02:10:15.5Z") - parse_time("2026-12-06T02:10:15Z"),
                         timedelta(milliseconds=500))
        self.assertIsNone(parse_time(None))
        with self.assertRaises(ValueError):
            parse_time("yesterday")


if __name__ == "__main__":
    unittest.main()
