"""Orders: proxy orders the owner confirms and pays, WeChat Pay, fulfilment, routing and the profit split."""

from app.orders import receivers  # noqa: F401  (connects the units_received receiver at import)
