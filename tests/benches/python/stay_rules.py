"""Seed 001's stay categories, as a Python worker computes them (the same
rules as guests/stay-rules): days between `srch_ci` and `srch_co`, strict
YYYY-MM-DD dates, missing or non-positive stays erroneous.
"""

import datetime


def day(text):
    """The day number of a strict YYYY-MM-DD date, or None."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    parts = (text[0:4], text[5:7], text[8:10])
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    try:
        return datetime.date(*map(int, parts)).toordinal()
    except ValueError:
        return None


def category(record):
    check_in, check_out = day(record.get("srch_ci")), day(record.get("srch_co"))
    if check_in is None or check_out is None or check_out - check_in <= 0:
        return "Erroneous data"
    days = check_out - check_in
    if days <= 4:
        return "Short stay"
    if days <= 10:
        return "Standard stay"
    if days <= 14:
        return "Standard extended stay"
    return "Long stay"
