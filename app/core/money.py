"""Money is integer fen. These helpers only format; arithmetic stays in integers."""


def yuan_text(fen: int) -> str:
    """12345 → '¥123.45'."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"
