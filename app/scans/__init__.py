"""Scans: receive, sell, return and undo, with their EPCIS events, idempotency and anti-diversion."""
