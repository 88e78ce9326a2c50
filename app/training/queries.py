"""Training reads the assessment needs (placeholder: the training domain replaces this module at merge)."""

from __future__ import annotations

from datetime import date


def training_rates(partner_ids: list[int], as_of: date) -> dict[int, tuple[int, int]]:
    """{partner_id: (staff who completed the required courses, staff required)} as of a day.

    A partner absent from the answer has no required training: its training part counts as fully met."""
    return {}
