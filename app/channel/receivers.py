"""Domain-event receivers of the channel: a store's first scan-in converts its shop's registration."""

from __future__ import annotations

from typing import Any

from app.core.events import units_received


@units_received.connect
def _on_units_received(sender: Any, *, store_id: int, **_: Any) -> None:
    """Goods scanned into a store: a protected registration of that shop becomes converted (same transaction)."""
    from app.channel.registrations import convert_for_store  # it imports the models; keep this module light

    convert_for_store(store_id, via="scan_in")
