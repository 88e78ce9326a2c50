"""How quantities read: a SKU's sellable unit (提, 瓶, 袋) and its case (箱 of `case_pack` units).

One rule everywhere: a number is written with its unit ("6 提"), a case pack names both units ("每箱 6 提"), and
quantities of different units are never added together: a total over several SKUs is a total per unit
("120 箱 · 30 袋").
"""

from __future__ import annotations

from collections.abc import Iterable


def quantity_text(n: int | float, unit: str) -> str:
    """`6 提`."""
    return f"{n:g} {unit}" if isinstance(n, float) else f"{n} {unit}"


def pack_text(case_pack: int, unit: str, case_unit: str = "箱") -> str:
    """`每箱 6 提`: how many sellable units one case holds."""
    return f"每{case_unit} {case_pack} {unit}"


def cases_text(units: int, case_pack: int, unit: str, case_unit: str = "箱") -> str:
    """`12 提（2 箱）` when `units` is a whole number of cases of more than one unit; else `12 提`."""
    if case_pack > 1 and units and units % case_pack == 0:
        return f"{units} {unit}（{units // case_pack} {case_unit}）"
    return quantity_text(units, unit)


def sum_by_unit(rows: Iterable[tuple[str, int]]) -> list[dict]:
    """(unit, quantity) pairs added up per unit, biggest first: `[{"unit": "提", "quantity": 120}, …]`."""
    totals: dict[str, int] = {}
    for unit, n in rows:
        totals[unit] = totals.get(unit, 0) + int(n or 0)
    return [{"unit": u, "quantity": n} for u, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


def by_unit_text(groups: list[dict], empty: str = "0") -> str:
    """`120 箱 · 30 袋` from `sum_by_unit`'s answer."""
    return " · ".join(quantity_text(g["quantity"], g["unit"]) for g in groups) or empty
