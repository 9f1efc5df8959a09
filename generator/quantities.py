"""Kubernetes resource quantities as numbers: CPU in millicores, memory in bytes, and
back to the shortest exact quantity (apimachinery's resource.Quantity reads the same)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL: dict[str, Decimal | int] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"\+?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]"
    r"|[eE][+-]?[0-9]+)?"
)


def is_quantity(text: str) -> bool:
    return _QUANTITY.fullmatch(text) is not None


def value(quantity: str | int) -> Decimal:
    """A quantity's exact value in base units (cores, bytes)."""
    written = _QUANTITY.fullmatch(str(quantity))
    assert written, f"not a quantity: {quantity!r}"
    number, suffix = Decimal(written.group("number")), written.group("suffix") or ""
    if suffix in BINARY:
        return number * BINARY[suffix]
    if suffix in DECIMAL:
        return number * Decimal(DECIMAL[suffix])
    if suffix:
        return number * Decimal(10) ** int(suffix[1:])
    return number


def millicores(quantity: str | int) -> int:
    """CPU in millicores, rounded up as the scheduler rounds a request."""
    return math.ceil(value(quantity) * 1000)


def memory_bytes(quantity: str | int) -> int:
    return math.ceil(value(quantity))


def cpu_quantity(millis: int) -> str:
    """`4000` -> `4`, `3920` -> `3920m`."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(size: int) -> str:
    """Bytes as the largest binary unit that holds them exactly, in Mi at least:
    `17179869184` -> `16Gi`; a size that is not whole mebibytes is rounded down to them."""
    mebibytes = size // 2**20
    for suffix, unit in (("Ti", 2**20), ("Gi", 2**10)):
        if mebibytes and mebibytes % unit == 0:
            return f"{mebibytes // unit}{suffix}"
    return f"{mebibytes}Mi"


def readable_memory(size: int) -> str:
    """For messages: `15.2Gi`."""
    gib = Decimal(size) / 2**30
    if gib < 1:
        return f"{size // 2**20}Mi"
    return f"{gib.quantize(Decimal('0.1')).normalize():f}Gi"


def times(quantity: str, factor: int) -> str:
    """A quantity times a whole number, in the quantity's own unit: 64Gi x 3 = 192Gi."""
    written = _QUANTITY.fullmatch(quantity)
    assert written, f"not a quantity: {quantity}"
    number = Decimal(written.group("number")) * factor
    return f"{number.normalize():f}{written.group('suffix') or ''}"
