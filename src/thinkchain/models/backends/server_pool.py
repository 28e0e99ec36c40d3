"""Server URLs and the pool a backend spreads its requests over."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]``, normalised, without duplicates."""
    items = [urls] if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for item in items:
        for part in item.split(","):
            if part.strip():
                url = normalise_url(part)
                if url not in out:
                    out.append(url)
    if not out:
        raise ValueError("no server URL given")
    return out


@dataclass
class PooledServer:
    url: str
    outstanding: int = 0
    failures: int = 0
    down_until: float = 0.0


@dataclass
class ServerPool:
    """Least-outstanding-requests choice among servers; failing servers cool down.

    A failure puts a server aside for a cool-down that doubles with each consecutive failure
    (1 s, 2 s, ... 30 s).  When it ends, the server gets one trial request before it gets its
    share again, and a success clears its record.  Requests that were already in flight when a
    server went down fail together; they count as one failure, not one each.  When every
    server is cooling down, the one that comes back first is tried (the chain's own retries
    and backoff decide when to give up).
    """

    urls: list[str]
    base_cooldown: float = 1.0
    max_cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    servers: list[PooledServer] = field(init=False)

    def __post_init__(self) -> None:
        self.servers = [PooledServer(u) for u in self.urls]

    def pick(self) -> PooledServer:
        now = self.clock()
        healthy = [s for s in self.servers if s.down_until <= now]
        # Least-outstanding would send every new request at once to a server just back from a
        # cool-down (it has none in flight); one trial at a time until it has proven itself.
        proven = [s for s in healthy if s.failures == 0 or s.outstanding == 0]
        candidates = proven or healthy
        if candidates:
            # Ties go to the server listed first, so one server gets warm caches.
            return min(candidates, key=lambda s: s.outstanding)
        return min(self.servers, key=lambda s: s.down_until)

    def failed(self, server: PooledServer) -> None:
        now = self.clock()
        if server.down_until > now:
            return  # already cooling down: another request saw the same outage
        server.failures += 1
        if len(self.servers) > 1:
            cooldown = min(self.max_cooldown, self.base_cooldown * 2 ** (server.failures - 1))
            server.down_until = now + cooldown

    def succeeded(self, server: PooledServer) -> None:
        server.failures = 0
        server.down_until = 0.0

    def is_down(self, url: str) -> bool:
        """Whether the server at ``url`` is cooling down now (for status pages and tests)."""
        now = self.clock()
        return any(s.url == url and s.down_until > now for s in self.servers)
