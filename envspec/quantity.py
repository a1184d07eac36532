"""Kubernetes resource quantities (`250m`, `1Gi`, `1e3`) as exact values and in canonical form.

A real API server stores every `resource.Quantity` in canonical form: `cpu: "0.25"` comes back as
`250m`, `memory: 1024Mi` as `1Gi`. Comparing desired and live state as strings would report a change
on every apply, so envspec compares quantities by value (`parse`). The fake API server in tests
stores them canonicalised (`canonical`), following apimachinery's `resource.Quantity` rules:

* the suffix family of the input is kept: binary (`Ki`..`Ei`), decimal SI (`n u m "" k M G T P E`)
  or decimal exponent (`e3`);
* a binary quantity whose value is below 1024 or not a whole number is shown in decimal SI;
* decimal forms use the largest exponent that is a multiple of 3 and keeps the number whole;
* values are rounded up to nano precision (10^-9), like the server does.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_PATTERN = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {exp: suffix for suffix, exp in _BINARY.items()}
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")
NANO = Fraction(1, 10**9)
_MAX_EXPONENT = 60


# A non-negative quantity as a spec may write one (requests, limits, quotas, sizes): exactly the
# strings `parse` accepts without a sign, so the spec models, the JSON Schema and the comparison
# agree on what a quantity is.
SPEC_PATTERN = r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"


class QuantityError(ValueError):
    """Not a Kubernetes quantity; the message is the API server's wording."""


def _split(text: str) -> tuple[Fraction, str]:
    """(value, format) where format is `binary`, `decimal` or `exponent`."""
    m = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return number * 2 ** _BINARY[suffix], "binary"
    if suffix in _DECIMAL:
        return number * Fraction(10) ** _DECIMAL[suffix], "decimal"
    exp = _EXPONENT.match(suffix)
    if exp:
        power = int(exp.group(1)[:6])
        if abs(power) > _MAX_EXPONENT:  # no quantity needs it, and 10**huge would never finish
            raise QuantityError(f"quantity exponent out of range: {suffix!r}")
        return number * Fraction(10) ** power, "exponent"
    raise QuantityError(f"unable to parse quantity's suffix: {suffix!r}")


def _round_up_to_nano(value: Fraction) -> Fraction:
    return Fraction(math.ceil(value / NANO)) * NANO


def parse(value: str | int | float) -> Fraction:
    """The exact value of a quantity (numbers are accepted, as the API accepts them); QuantityError if malformed."""
    if isinstance(value, bool):
        raise QuantityError("a quantity must be a string or a number")
    if isinstance(value, (int, float)):
        return _round_up_to_nano(Fraction(str(value)))
    return _round_up_to_nano(_split(value)[0])


def same(a: object, b: object) -> bool:
    """True when both are quantities of equal value, or (when either is not a quantity) equal as given."""
    if a == b and type(a) is type(b):
        return True
    try:
        return parse(a) == parse(b)  # type: ignore[arg-type]
    except QuantityError:
        return a == b


def _decimal(value: Fraction, fmt: str) -> str:
    units = value / NANO  # a whole number after rounding to nano
    amount, exponent = int(units), -9
    while amount and amount % 10 == 0:
        amount //= 10
        exponent += 1
    shift = exponent % 3
    amount, exponent = amount * 10**shift, exponent - shift
    if fmt == "decimal" and exponent in _DECIMAL_SUFFIX:
        return f"{amount}{_DECIMAL_SUFFIX[exponent]}"
    return f"{amount}e{exponent}" if exponent else str(amount)


def canonical(value: str | int | float) -> str:
    """The form a real API server stores and returns for this quantity."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        exact, fmt = _round_up_to_nano(Fraction(str(value))), "decimal"
    else:
        exact, fmt = _split(value)  # type: ignore[arg-type]
        exact = _round_up_to_nano(exact)
    if exact == 0:
        return "0"
    if fmt == "binary" and (abs(exact) < 1024 or exact.denominator != 1):
        fmt = "decimal"
    if fmt != "binary":
        return _decimal(exact, fmt)
    amount, exponent = int(exact), 0
    while amount % 1024 == 0 and exponent < 60:
        amount //= 1024
        exponent += 10
    return f"{amount}{_BINARY_SUFFIX.get(exponent, '')}"
