"""Exceptions, one per family of the daemon's error codes.

Messages come from the daemon, which never puts a secret in them.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class AuthsomeError(Exception):
    """Base of every error this package raises.

    Attributes:
        code: the daemon's stable error code (e.g. ``"provider_not_found"``).
        message: a message for people; ``str(error)`` is this message.
        exit_code: the exit code the ``authsome`` CLI uses for the same error.
    """

    default_code = "error"
    exit_code = 1

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidInput(AuthsomeError):
    """A name or argument the daemon refuses (``invalid_input``, ``profile_not_found``)."""

    default_code = "invalid_input"
    exit_code = 2


class ConnectionNotFound(AuthsomeError):
    """The provider exists but has no such connection (``connection_not_found``)."""

    default_code = "connection_not_found"
    exit_code = 3


class ProviderNotFound(AuthsomeError):
    """No provider of that name (``provider_not_found``)."""

    default_code = "provider_not_found"
    exit_code = 4


class CredentialUnavailable(AuthsomeError):
    """No usable credential: none stored, or it expired and refresh failed."""

    default_code = "credential_missing"
    exit_code = 5


class DaemonUnavailable(AuthsomeError):
    """No daemon of this home could be reached, or an impostor holds its port."""

    default_code = "daemon_unavailable"
    exit_code = 9


_BY_CODE: Dict[str, Type[AuthsomeError]] = {
    "provider_not_found": ProviderNotFound,
    "connection_not_found": ConnectionNotFound,
    "credential_missing": CredentialUnavailable,
    "refresh_failed": CredentialUnavailable,
    "daemon_unavailable": DaemonUnavailable,
    "daemon_impostor": DaemonUnavailable,
    "invalid_input": InvalidInput,
    "profile_not_found": InvalidInput,
}


def error_from_code(code: str, message: str) -> AuthsomeError:
    """The exception for a daemon error body ``{"error": code, "message": message}``."""
    return _BY_CODE.get(code, AuthsomeError)(message, code)
