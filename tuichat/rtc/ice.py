"""ICE servers as aiortc takes them, from the ``stun:``/``turn:`` URLs people type."""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCIceServer


def ice_server_list(servers: Iterable[RTCIceServer | str]) -> list[RTCIceServer]:
    """``stun:``/``turn:`` URLs or ready ``RTCIceServer`` objects, as aiortc wants them."""
    return [s if isinstance(s, RTCIceServer) else RTCIceServer(urls=s) for s in servers]
