"""Python client for Authsome, the local credential broker.

    >>> from authsome_client import AuthLayer
    >>> auth = AuthLayer()
    >>> token = auth.get_access_token("github")      # refreshed by the daemon
    >>> headers = auth.get_auth_headers("openai")    # {"Authorization": "Bearer ..."}

Everything goes through the home's daemon (started when needed) over HTTP on
127.0.0.1. Returned secrets hide themselves in ``repr()``.
"""

from __future__ import annotations

import os
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from ._daemon import DaemonClient, default_home
from ._errors import (
    AuthsomeError,
    ConnectionNotFound,
    CredentialUnavailable,
    DaemonUnavailable,
    InvalidInput,
    ProviderNotFound,
)
from ._types import Connection, ConnectionSummary, Secret, SecretDict, parse_time

__version__ = "0.1.0"

__all__ = [
    "AuthLayer",
    "AuthsomeError",
    "Connection",
    "ConnectionNotFound",
    "ConnectionSummary",
    "CredentialUnavailable",
    "DaemonUnavailable",
    "InvalidInput",
    "ProviderNotFound",
    "Secret",
    "SecretDict",
]

# The secret field that authenticates requests, by auth type.
_SECRET_FIELD = {"oauth2": "access_token", "api_key": "api_key"}


@contextmanager
def _answer() -> Iterator[None]:
    """Turns a malformed answer from the daemon into an :class:`AuthsomeError`."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise AuthsomeError(
            f"unexpected answer from the daemon ({type(e).__name__})", "bad_response"
        ) from None


def _seg(name: str, what: str) -> str:
    """A provider or connection name as one percent-encoded path segment."""
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise InvalidInput(f"invalid {what} name: {name!r}")
    return urllib.parse.quote(name, safe="")


class AuthLayer:
    """Credentials from the Authsome daemon of one home.

    Args:
        home: the Authsome home; default ``AUTHSOME_HOME``, else ``~/.authsome``.
        profile: the profile; default ``AUTHSOME_PROFILE``, else the home's default.
        start: start the daemon (``authsome daemon start``) when none runs.
        timeout: seconds to wait for each answer from the daemon.

    The daemon is found and checked on the first call, not here. Every error
    is an :class:`AuthsomeError`.
    """

    def __init__(
        self,
        home: Union[str, "os.PathLike[str]", None] = None,
        profile: Optional[str] = None,
        start: bool = True,
        timeout: float = 30.0,
    ) -> None:
        root = Path(os.fspath(home)).expanduser() if home is not None else default_home()
        profile = profile if profile is not None else (os.environ.get("AUTHSOME_PROFILE") or None)
        self._client = DaemonClient(root, profile, start, timeout)

    @property
    def home(self) -> Path:
        """The Authsome home."""
        return self._client.home

    @property
    def profile(self) -> Optional[str]:
        """The profile asked for (``None``: the home's default)."""
        return self._client.profile

    def __repr__(self) -> str:
        return (
            f"AuthLayer(home={str(self.home)!r}, profile={self.profile!r}, "
            f"port={self._client.port!r})"
        )

    def _view(self, provider: str, connection: str, show_secret: bool) -> Dict[str, Any]:
        route = f"/v1/connections/{_seg(provider, 'provider')}/{_seg(connection, 'connection')}"
        # Only the fields that authenticate requests: the refresh token stays in the daemon.
        query = {"show_secret": "true", "fields": "access_token,api_key"} if show_secret else None
        view = self._client.get(route, query)
        if not isinstance(view, dict):
            raise AuthsomeError("unexpected answer from the daemon", "bad_response")
        return view

    def _get_field(self, route: str, key: str, query: Optional[Dict[str, str]] = None) -> Any:
        """``answer[key]`` of ``GET route``."""
        answer = self._client.get(route, query)
        with _answer():
            return answer[key]

    def get_access_token(self, provider: str, connection: str = "default") -> Secret:
        """The credential to send: an OAuth2 access token (refreshed by the
        daemon when due) or an API key.

        Raises:
            CredentialUnavailable: nothing stored, or expired and refresh failed.
        """
        view = self._view(provider, connection, show_secret=True)
        auth_type = view.get("auth_type")
        field = _SECRET_FIELD.get(str(auth_type))
        if field is None:
            raise AuthsomeError(f"unsupported auth type {auth_type!r} for {provider}", "bad_response")
        with _answer():
            value = (view.get("secrets") or {}).get(field)
            value = _str(value) if value is not None else ""
        if not value or value == "***":
            status = view.get("status")
            login = f"authsome login {provider}" + (
                f" --connection {connection}" if connection != "default" else ""
            )
            if status in ("expired", "invalid"):
                reason = view.get("last_error") or "the token has expired"
                message = f"{provider} ({connection}) is {status}: {reason}; run `{login} --force`"
            else:
                message = f"no {field} stored for {provider} ({connection}); run `{login}`"
            raise CredentialUnavailable(message)
        return Secret(value)

    def get_auth_headers(self, provider: str, connection: str = "default") -> SecretDict:
        """The headers the proxy would add to a request to ``provider``,
        e.g. ``{"Authorization": "Bearer ..."}`` or ``{"X-Api-Key": "..."}``."""
        route = (
            f"/v1/connections/{_seg(provider, 'provider')}/"
            f"{_seg(connection, 'connection')}/headers"
        )
        headers = self._get_field(route, "headers")
        with _answer():
            return SecretDict((_str(k), Secret(_str(v))) for k, v in headers.items())

    def get_connection(self, provider: str, connection: str = "default") -> Connection:
        """A connection's metadata (status, scopes, expiry, ...); no secrets."""
        view = self._view(provider, connection, show_secret=False)
        with _answer():
            return Connection.from_view(view)

    def list_connections(self) -> List[ConnectionSummary]:
        """Every connection of the profile, one entry per (provider, connection)."""
        providers = self._get_field("/v1/connections", "providers")
        with _answer():
            return [
                ConnectionSummary(
                    provider=p["name"],
                    display_name=p.get("display_name") or p["name"],
                    connection=c["connection"],
                    status=c["status"],
                    auth_type=p.get("auth_type", ""),
                    expires_at=parse_time(c.get("expires_at")),
                    last_error=c.get("last_error"),
                )
                for p in providers
                for c in p.get("connections") or []
            ]

    def export(self, provider: str, connection: str = "default") -> SecretDict:
        """The provider's environment variables, e.g. ``{"GITHUB_TOKEN": "..."}``."""
        _seg(provider, "provider")  # same checks as the path routes
        _seg(connection, "connection")
        query = {"provider": provider, "connection": connection}
        variables = self._get_field("/v1/export", "vars", query)
        with _answer():
            return SecretDict((_str(v["name"]), Secret(_str(v["value"]))) for v in variables)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
