"""Export files are safe to open: no cell a spreadsheet would evaluate."""

from __future__ import annotations

import pytest

from fieldcheck.spreadsheet import safe_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23", "'+33 1 23"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("Plain store", "Plain store"),
        (12.5, 12.5),
        ("", ""),
    ],
)
def test_formula_cells_are_escaped(value: object, expected: object) -> None:
    assert safe_cell(value) == expected
