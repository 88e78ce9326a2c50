"""Domain events inside one transaction: the code that moves goods announces it; readers keep their views.

Receivers run synchronously, in the sender's transaction, so a rollup or an order state can never disagree
with the scan that caused it. Receivers must only flush, never commit, and never call outside systems.
"""

from blinker import Namespace

_signals = Namespace()

# No signal for sales. A sale (sell, return, undone sale) reaches the rollups one way: a row in `sales_inbox`,
# written in the sale's own transaction (`app.scans.inbox.note_sale`, and the hot sell path's SQL functions, which
# are released and frozen and write it themselves), folded into the rollups exactly once by
# `app.analytics.rollups.fold`. A `units_sold` signal, as there was, reached its one listener (which wrote that
# same inbox row) from the general path only: the hot path bypassed it. Sending it after a hot call as well would
# have counted every hot sale twice (the SQL's row and the listener's), or, with the listener skipping them, in a
# transaction of its own after the sale's had committed (a crash between the two loses it). The inbox is read by
# whoever needs sales: a new reader folds from it, never from a signal.

# sender: None; kwargs: store_id, sku_id, quantity, at, order_id (None when not on an order), serials (list)
units_received = _signals.signal("units-received")

# sender: None; kwargs: store_id, sku_id, quantity, at, order_id, warehouse_id
units_shipped = _signals.signal("units-shipped")

# sender: None; kwargs: order_ids (sorted). Sent by a receive before it locks the codes it takes in (and again for an
# order it meets only then), so that the domain that will count the units on those orders locks them first, as the
# lock order wants (app/inventory/services.py). Receivers lock, nothing else.
receiving = _signals.signal("receiving")
