"""Domain events inside one transaction: the code that moves goods announces it; readers keep their views.

Receivers run synchronously, in the sender's transaction, so a rollup or an order state can never disagree
with the scan that caused it. Receivers must only flush, never commit, and never call outside systems.
"""

from blinker import Namespace

_signals = Namespace()

# sender: None; kwargs: store_id, sku_id, quantity (negative for a return or an undone sell), at (datetime),
# amount_fen (at the store's price), event_id. (The hot sell path on PostgreSQL records its sales in SQL.)
units_sold = _signals.signal("units-sold")

# sender: None; kwargs: store_id, sku_id, quantity, at, order_id (None when not on an order), serials (list)
units_received = _signals.signal("units-received")

# sender: None; kwargs: store_id, sku_id, quantity, at, order_id, warehouse_id
units_shipped = _signals.signal("units-shipped")

# sender: None; kwargs: order_ids (sorted). Sent by a receive before it locks the codes it takes in (and again for an
# order it meets only then), so that the domain that will count the units on those orders locks them first, as the
# lock order wants (app/inventory/services.py). Receivers lock, nothing else.
receiving = _signals.signal("receiving")
