"""The sales channel: partners (HQ → agents → distributors), stores, territories, invites, regions, registrations."""

from app.channel import receivers  # noqa: F401  (connects the scan-in receiver at import)
