"""Unit conversion: exact per UCUM or not at all (service/domain/units.py)."""

from __future__ import annotations

import pytest

from service.domain.units import convert, factor


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1.2, "mg/dL", "mg/dL", 1.2),
        (1500, "{cells}/uL", "10*3/uL", 1.5),
        (150, "K/uL", "10*9/L", 150),
        (2000, "IU/mL", "[IU]/L", 2_000_000),
        (500, "[iU]/mL", "[IU]/mL", 500),
    ],
)
def test_exact_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        # HBV DNA: copies and international units are related only through an assay's own factor (≈ 5).
        ("{copies}/mL", "[IU]/mL"),
        ("copies/mL", "IU/mL"),
        ("[IU]/mL", "{copies}/mL"),
        ("/mL", "[IU]/mL"),
        # An enzyme unit (U = umol/min) is not an international unit of a biological standard.
        ("[IU]/L", "U/L"),
        ("[arb'U]/mL", "[IU]/mL"),
    ],
)
def test_arbitrary_units_convert_to_nothing_but_themselves(source: str, target: str) -> None:
    assert factor(source, target) is None


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (3, "months", "wk", 13.0446),  # UCUM mo: the mean Julian month
        (3, "Months", "wk", 13.0446),
        (12, "weeks", "wk", 12),
        (1, "year", "mo", 12),
        (84, "days", "wk", 12),
    ],
)
def test_time_units_written_as_words(value: float, source: str, target: str, expected: float) -> None:
    # Fifth-round review F20: a life expectancy of "3 months" (unit text, no UCUM code) was not converted.
    assert convert(value, source, target) == pytest.approx(expected, rel=1e-4)
