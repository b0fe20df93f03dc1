"""Listing dates such as "Mar 31" or "Nov 27, 2023" turned into ISO dates.

Assumption (documented in the README): these sites print the year only for dates outside
the current year, so a year-less date lies in the year the page was captured. That year is
not printed either; the earliest year consistent with the page is the year after the newest
explicit year on the same listing, and that is the year we give year-less dates. Records
carry `date_inferred_year` so the assumption stays visible.
"""

from __future__ import annotations

from datetime import date

MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}
MONTH_RE = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


def parse_month_day(month: str, day: str, year: str | None) -> tuple[int, int, int | None]:
    return MONTHS[month], int(day), int(year) if year else None


def resolve_years(parsed: list[tuple[int, int, int | None] | None]) -> tuple[list[str | None], int | None]:
    """ISO dates for one listing's (month, day, year|None) list, and the year given to year-less ones."""
    explicit = [p[2] for p in parsed if p and p[2] is not None]
    inferred = max(explicit) + 1 if explicit else None
    out: list[str | None] = []
    for p in parsed:
        if p is None:
            out.append(None)
            continue
        month, day, year = p
        year = year if year is not None else inferred
        if year is None:
            out.append(None)
            continue
        try:
            out.append(date(year, month, day).isoformat())
        except ValueError:  # e.g. Feb 29 in a non-leap inferred year
            out.append(None)
    return out, inferred
