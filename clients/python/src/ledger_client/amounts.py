"""Amounts: `decimal.Decimal` in and out, decimal strings on the wire, never floats.

Conversions never do arithmetic, so Python's default decimal context (28 digits) never rounds
them: `Decimal(str)` and `format(d, "f")` are exact at any length, and the node allows up to 38
significant digits (128-bit minor units). For arithmetic on amounts of more than 28 digits use
`decimal.localcontext(LEDGER_CONTEXT)`, which has room for any u128 sum and traps rounding.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

from .errors import InvalidInputError, ProtocolError

# 2 x 39 digits: the sum or product of two u128 amounts still fits; Inexact raises rather than
# rounding a balance.
LEDGER_CONTEXT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])

_WIRE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def to_wire(amount: Decimal | int, what: str = "amount") -> str:
    """The wire form of `amount`: plain digits, never an exponent, the given scale kept."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise InvalidInputError(f"{what} must be a decimal.Decimal (or int), not {type(amount).__name__}: floats are never exact")
    if isinstance(amount, int):
        return str(amount)
    if not amount.is_finite():
        raise InvalidInputError(f"{what} must be finite, not {amount}")
    text = format(amount, "f")
    if text.startswith("-") and amount.is_zero():
        text = text[1:]
    return text


def from_wire(text: str, what: str = "amount") -> Decimal:
    """A decimal string from the node; anything but `-?[0-9]+(.[0-9]+)?` breaks the contract."""
    if _WIRE.fullmatch(text) is None:
        raise ProtocolError(f"{what} {text!r} is not a plain decimal")
    return Decimal(text)


def optional_from_wire(text: str, what: str = "amount") -> Decimal | None:
    """An amount field where the empty string means "none"."""
    return None if text == "" else from_wire(text, what)


def to_minor_units(amount: Decimal, scale: int) -> int:
    """Minor units of `amount` at `scale` places, as the node converts it: trailing zeros do not
    count ("25.000" is 2500 at scale 2); any other extra place, or a negative amount, is refused."""
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise InvalidInputError(f"amount {amount} is not finite")
    mantissa = int("".join(map(str, digits)) or "0")
    if sign and mantissa != 0:
        raise InvalidInputError(f"amount {amount} is negative")
    while exponent < -scale and mantissa % 10 == 0 and mantissa != 0:
        mantissa //= 10
        exponent += 1
    if mantissa == 0:
        return 0
    if exponent < -scale:
        raise InvalidInputError(f"amount {amount} has more than {scale} decimal places")
    minor: int = mantissa * 10 ** int(exponent + scale)  # exponent >= -scale here
    if minor >= 2**128:
        raise InvalidInputError(f"amount {amount} does not fit 128-bit minor units")
    return minor
