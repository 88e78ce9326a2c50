"""Sell-through rollups, dashboards, allocation plans and production suggestions."""

from app.analytics import receivers  # noqa: F401  (connects the rollup receivers to the domain events)
