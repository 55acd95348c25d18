"""Cells of CSV files people open in a spreadsheet: text that would run as a formula is defused.

Every CSV fieldcheck writes (client exports, payout batch files) goes through `safe_cell`: a value
from a client or a worker (a store name, an account holder) must never become a formula in the
spreadsheet of the person who opens the file (OWASP, CSV injection).
"""

from __future__ import annotations

# A spreadsheet treats a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> object:
    """Text a spreadsheet could run is prefixed with an apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
