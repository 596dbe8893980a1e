"""Values returned to callers: secrets that hide themselves in ``repr()``,
and connection metadata (which holds no secret)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional


class Secret(str):
    """A credential. Behaves as the ``str`` it is (``f"Bearer {tok}"`` works,
    and so do HTTP libraries), but ``repr()`` shows ``Secret('***')`` so it
    does not end up in tracebacks, debug output or logs of containers."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class SecretDict(Dict[str, str]):
    """A ``dict`` of secret values (headers, environment variables) whose
    ``repr()`` and ``str()`` show the keys only. Compares like a plain dict."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '***'" for k in self) + "}"

    __str__ = __repr__


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$"
)


def parse_time(value: Optional[str]) -> Optional[datetime]:
    """An aware UTC ``datetime`` from RFC 3339 text (``None`` stays ``None``).

    Python 3.9's ``fromisoformat`` takes neither ``Z`` nor nanoseconds, both
    of which the daemon sends, hence the parser here.
    """
    if value is None:
        return None
    m = _RFC3339.match(value.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    # A leap second (:60) is read as the last microsecond of its minute.
    if second == 60:
        second, micros = 59, 999999
    local = datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    return local.astimezone(timezone.utc)


@dataclass(frozen=True)
class Connection:
    """One connection's metadata, as ``authsome get`` shows it. No secrets."""

    provider: str
    display_name: str
    connection: str
    profile: str
    status: str
    auth_type: str
    scopes: List[str]
    base_url: Optional[str]
    account: Optional[str]
    expires_at: Optional[datetime]
    obtained_at: Optional[datetime]
    last_refresh_at: Optional[datetime]
    last_error: Optional[str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> "Connection":
        """From a ``ConnectionView`` JSON object; its ``secrets`` map is dropped."""
        return cls(
            provider=view["provider"],
            display_name=view.get("display_name") or view["provider"],
            connection=view["connection"],
            profile=view.get("profile", ""),
            status=view["status"],
            auth_type=view["auth_type"],
            scopes=list(view.get("scopes") or []),
            base_url=view.get("base_url"),
            account=view.get("account"),
            expires_at=parse_time(view.get("expires_at")),
            obtained_at=parse_time(view.get("obtained_at")),
            last_refresh_at=parse_time(view.get("last_refresh_at")),
            last_error=view.get("last_error"),
            created_at=parse_time(view.get("created_at")),
            updated_at=parse_time(view.get("updated_at")),
        )


@dataclass(frozen=True)
class ConnectionSummary:
    """One connection in :meth:`AuthLayer.list_connections`. No secrets."""

    provider: str
    display_name: str
    connection: str
    status: str
    auth_type: str
    expires_at: Optional[datetime]
    last_error: Optional[str]
