"""One request to a running supervisor over its Unix socket (`service/api.sock`), for the
headless commands that talk to it (`vik-tui stop --drain`, `vik-tui explain`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from vik_tui.api.endpoint import short_path

TIMEOUT_SEC = 10.0


class NotServing(Exception):
    """Nothing answers on the socket (no supervisor, or one killed with SIGKILL)."""


def ask(socket_path: Path, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body); NotServing when nobody listens there."""
    return asyncio.run(_ask(socket_path, method, path, body))


async def _ask(socket_path: Path, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    if not socket_path.exists():
        raise NotServing(f"no API socket at {socket_path}")
    with short_path(socket_path) as address:
        connector = aiohttp.UnixConnector(path=address)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SEC)) as session,
                session.request(
                    method, f"http://vik-tui{path}", data=orjson.dumps(body) if body is not None else None
                ) as response,
            ):
                raw = await response.read()
                return response.status, orjson.loads(raw) if raw else None
        except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotServing(f"nothing answers on {socket_path}: {exc}") from None
        except TimeoutError:
            raise NotServing(f"no answer on {socket_path} within {TIMEOUT_SEC:g}s") from None
