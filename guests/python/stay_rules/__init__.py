"""The expedia stay rules in Python, shared by the stay_category_py
transformer and the stay_summary_py aggregator as guests/stay-rules is by
the Rust guests, and giving the same category for every input.

Days between check-in (`srch_ci`) and check-out (`srch_co`), both strict
`YYYY-MM-DD` text: none, or not positive, is "Erroneous data"; 1-4 "Short
stay"; 5-10 "Standard stay"; 11-14 "Standard extended stay"; more "Long
stay".
"""

ERRONEOUS = "Erroneous data"
SHORT = "Short stay"
STANDARD = "Standard stay"
STANDARD_EXTENDED = "Standard extended stay"
LONG = "Long stay"

_DIGITS = frozenset("0123456789")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_leap(year):
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _days_from_civil(year, month, day):
    # Howard Hinnant's algorithm, as in stay-rules, rather than `datetime`:
    # datetime has no year 0 and would put "0000-01-01" in another category
    # than the Rust guest does.
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def parse_date(text):
    """Days since 1970-01-01 of a strict `YYYY-MM-DD` string, else None."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    year, month, day = text[0:4], text[5:7], text[8:10]
    if not _DIGITS.issuperset(year + month + day):
        return None
    year, month, day = int(year), int(month), int(day)
    if not 1 <= month <= 12:
        return None
    month_days = 29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]
    if not 1 <= day <= month_days:
        return None
    return _days_from_civil(year, month, day)


def category(check_in, check_out):
    """The category of a booking with these check-in and check-out values
    (any JSON values: only strict date strings count)."""
    start, end = parse_date(check_in), parse_date(check_out)
    if start is None or end is None:
        return ERRONEOUS
    days = end - start
    if days <= 0:
        return ERRONEOUS
    if days <= 4:
        return SHORT
    if days <= 10:
        return STANDARD
    if days <= 14:
        return STANDARD_EXTENDED
    return LONG


#: Every category, in the order a summary lists them.
CATEGORIES = (ERRONEOUS, SHORT, STANDARD, STANDARD_EXTENDED, LONG)
