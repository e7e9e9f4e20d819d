"""Several fake clusters on one shared event loop, started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..kubeconfig import write_kubeconfig
from ..loopback import EventLoopThread, shared_loop
from .server import FakeKubeApiServer


class FakeFleet:
    """Several fake clusters on one shared event loop, started and stopped together."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        loop: EventLoopThread | None = None,
        **server_options: Any,
    ) -> None:
        self._loop = loop or shared_loop()
        self.servers: dict[str, FakeKubeApiServer] = {}
        for name in names:
            self.add(name, **server_options)

    def add(self, name: str, **server_options: Any) -> FakeKubeApiServer:
        """Create a server named `name` (its kubeconfig context); not started yet."""
        if name in self.servers:
            raise ValueError(f"fleet already has a server named {name!r}")
        server = FakeKubeApiServer(name, loop=self._loop, **server_options)
        self.servers[name] = server
        return server

    def __getitem__(self, name: str) -> FakeKubeApiServer:
        return self.servers[name]

    def __iter__(self) -> Iterator[FakeKubeApiServer]:
        return iter(self.servers.values())

    def __len__(self) -> int:
        return len(self.servers)

    def start(self) -> FakeFleet:
        """Start every server that is not running, concurrently."""

        async def start_all() -> None:
            await asyncio.gather(*(s._astart() for s in self.servers.values() if not s.running))

        self._loop.run(start_all())
        return self

    def stop(self) -> None:
        """Stop every running server."""

        async def stop_all() -> None:
            await asyncio.gather(*(s._astop() for s in self.servers.values() if s.running))

        self._loop.run(stop_all())

    def __enter__(self) -> FakeFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig_clusters(self) -> dict[str, tuple[str, str]]:
        """`context -> (url, token)` for write_kubeconfig()."""
        return {name: (s.url, s.token) for name, s in self.servers.items()}

    def write_kubeconfig(self, path: str | Path, current_context: str | None = None) -> Path:
        """Write a kubeconfig with one context per server, named like the server."""
        return write_kubeconfig(path, self.kubeconfig_clusters(), current_context)
