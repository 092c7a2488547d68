"""Quartz cron expressions, as Databricks jobs take them (``schedule.quartz_cron_expression``).

Databricks schedules jobs with Quartz's syntax ("Quartz Cron syntax", Databricks Jobs
API, ``CronSchedule``), not Unix cron's: six or seven fields (seconds, minutes, hours,
day-of-month, month, day-of-week, optional year), and ``?`` ("no specific value") in
exactly one of day-of-month and day-of-week, since Quartz does not let both be given
(Quartz Scheduler's ``CronExpression`` documentation). A Unix expression (five fields)
or one with both days set is refused here, with what is allowed, instead of by the
Jobs API halfway through ``pulumi up``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["cron_problem"]

_MONTHS: Final = (
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
)  # fmt: skip
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

#: name, lowest, highest, names (1-based) for each field, in order.
_FIELDS: Final[tuple[tuple[str, int, int, tuple[str, ...]], ...]] = (
    ("seconds", 0, 59, ()),
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2099, ()),
)

_EXAMPLE: Final = '"0 0 6 * * ?" (every day at 06:00) or "0 30 7 ? * MON-FRI"'
_ITEM: Final = re.compile(r"(?P<start>\*|\w+)(?:-(?P<end>\w+))?(?:/(?P<step>\d+))?")
_DAY_OF_MONTH_SPECIAL: Final = re.compile(r"\?|L|LW|L-(?P<offset>\d+)|(?P<weekday>\d+)W")
_DAY_OF_WEEK_SPECIAL: Final = re.compile(r"\?|L|(?P<last>\w+)L|(?P<day>\w+)#(?P<nth>[1-5])")


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.isdigit():
        return low <= int(text) <= high
    return text.upper() in names


def _special(index: int, text: str) -> bool | None:
    """Whether a day field's special form (``?``, ``L``, ``W``, ``#``) is valid; None when the
    text is not one."""
    if index == 3:
        match = _DAY_OF_MONTH_SPECIAL.fullmatch(text.upper())
        if match is None:
            return None
        if match["offset"] is not None:
            return 1 <= int(match["offset"]) <= 30
        if match["weekday"] is not None:
            return 1 <= int(match["weekday"]) <= 31
        return True
    if index == 5:
        match = _DAY_OF_WEEK_SPECIAL.fullmatch(text.upper())
        if match is None:
            return None
        day = match["last"] or match["day"]
        return day is None or _value(day, 1, 7, _DAYS)
    return None


def _field_ok(index: int, text: str) -> bool:
    _, low, high, names = _FIELDS[index]
    special = _special(index, text)
    if special is not None:
        return special  # a special form stands alone in its field
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return False
        start, end, step = match["start"], match["end"], match["step"]
        if start == "*" and end is not None:
            return False
        if start != "*" and not _value(start, low, high, names):
            return False
        if end is not None and not _value(end, low, high, names):
            return False
        if step is not None and not 1 <= int(step) <= high:
            return False
    return True


def cron_problem(expression: str) -> str | None:
    """What is wrong with ``expression`` as a Quartz cron expression, or None when it is one."""
    fields = expression.split()
    if len(fields) not in (6, 7):
        return (
            f"must be a Quartz cron expression: 6 or 7 fields (seconds minutes hours "
            f"day-of-month month day-of-week [year]), not {len(fields)}; e.g. {_EXAMPLE}"
        )
    if (fields[3] == "?") == (fields[5] == "?"):
        return (
            "Quartz cron needs ? in exactly one of day-of-month and day-of-week (the 4th and "
            f"6th fields); e.g. {_EXAMPLE}"
        )
    for index, text in enumerate(fields):
        if not _field_ok(index, text):
            name, low, high, names = _FIELDS[index]
            allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
            return (
                f"its {name} field {text!r} is not Quartz cron (values {allowed}, with * , - /"
                + (" and ? L W #" if index in (3, 5) else "")
                + f"); e.g. {_EXAMPLE}"
            )
    return None
