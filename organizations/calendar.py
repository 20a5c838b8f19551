"""Business-calendar arithmetic for an organization.

An organization works on ``work_days`` (Python weekday numbers, 0 = Monday) from
``work_start`` to ``work_end`` local time in its ``timezone``, except on its
``Holiday`` dates. SLA deadlines are counted in *business hours* of that calendar.

All arithmetic is done on absolute (UTC) instants: a working window is the pair
of instants "work_start local" and "work_end local" of one local date, so a DST
change inside a window shortens or lengthens it by the real amount, and a DST
change at night (the usual case) does not change the length of any window while
local opening times stay the same wall-clock times on both sides of the change.

Inputs may be any aware datetime; results are aware datetimes in UTC.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Iterable

UTC = dt.UTC
CACHE_SECONDS = 300.0
_CALENDARS: dict = {}  # organization id -> (key, loaded at, calendar); the calendar is never mutated
# A guard against calendars that never open (e.g. every work day a holiday).
MAX_DAYS_SCANNED = 366 * 20


class BusinessCalendar:
    """One organization's calendar, with its holidays loaded once (reuse it for many computations)."""

    def __init__(
        self,
        *,
        timezone: str = "UTC",
        work_days: Iterable[int] = (0, 1, 2, 3, 4),
        work_start: dt.time = dt.time(9, 0),
        work_end: dt.time = dt.time(17, 0),
        holidays: Iterable[dt.date] = (),
    ) -> None:
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.work_days = frozenset(work_days)
        self.work_start = work_start
        self.work_end = work_end
        self.holidays = frozenset(holidays)
        if not self.work_days:
            raise ValueError("A business calendar needs at least one work day.")
        if work_end <= work_start:
            raise ValueError("work_end must be after work_start.")

    @classmethod
    def for_organization(cls, organization) -> BusinessCalendar:
        """The organization's calendar, kept in process per organization (issue 14: every task
        activation needs it). An entry is keyed by the organization row's ``updated_at``, which
        every change of the calendar moves (``organization_update``, and the holiday services
        touch it), so a change in any process is seen by the next activation that loads the
        organization; entries also expire after ``CACHE_SECONDS`` in case a holiday is written
        some other way."""
        from organizations.models import Holiday

        now = time.monotonic()
        key = (organization.timezone, tuple(organization.work_days), organization.work_start, organization.work_end)
        key = (*key, organization.updated_at)
        cached = _CALENDARS.get(organization.pk)
        if cached is not None and cached[0] == key and now - cached[1] < CACHE_SECONDS:
            return cached[2]
        calendar = cls(
            timezone=organization.timezone,
            work_days=organization.work_days,
            work_start=organization.work_start,
            work_end=organization.work_end,
            holidays=Holiday.objects.filter(organization=organization).values_list("date", flat=True),
        )
        _CALENDARS[organization.pk] = (key, now, calendar)
        return calendar

    # -- building blocks ----------------------------------------------------------------
    def is_work_date(self, day: dt.date) -> bool:
        return day.weekday() in self.work_days and day not in self.holidays

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working window of a local date as UTC instants, or None on a day off."""
        if not self.is_work_date(day):
            return None
        start = dt.datetime.combine(day, self.work_start, tzinfo=self.tz).astimezone(UTC)
        end = dt.datetime.combine(day, self.work_end, tzinfo=self.tz).astimezone(UTC)
        if end <= start:  # only possible for a window squeezed by a DST jump
            return None
        return start, end

    def _local_date(self, instant: dt.datetime) -> dt.date:
        if instant.tzinfo is None:
            raise ValueError("Business-calendar arithmetic needs aware datetimes.")
        return instant.astimezone(self.tz).date()

    # -- arithmetic ----------------------------------------------------------------------
    def add_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The instant at which ``hours`` business hours have elapsed since ``start``.

        Zero hours returns ``start`` itself (in UTC). A result that lands exactly on
        the end of a working window is that end (17:00), not the next opening.
        """
        if hours < 0:
            raise ValueError("hours must not be negative.")
        cursor = start.astimezone(UTC) if start.tzinfo else None
        if cursor is None:
            raise ValueError("Business-calendar arithmetic needs aware datetimes.")
        remaining = dt.timedelta(hours=hours)
        if not remaining:
            return cursor
        day = self._local_date(cursor) - dt.timedelta(days=1)  # a window may start the previous local day
        for _ in range(MAX_DAYS_SCANNED):
            win = self.window(day)
            day += dt.timedelta(days=1)
            if win is None or win[1] <= cursor:
                continue
            begin = max(cursor, win[0])
            available = win[1] - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            cursor = win[1]
        raise ValueError("The business calendar has no working time in the next 20 years.")

    def hours_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business hours elapsed from ``start`` to ``end`` (negative when end is before start)."""
        if end < start:
            return -self.hours_between(end, start)
        a, b = start.astimezone(UTC), end.astimezone(UTC)
        total = dt.timedelta()
        day = self._local_date(a) - dt.timedelta(days=1)
        last = self._local_date(b)
        while day <= last:
            win = self.window(day)
            day += dt.timedelta(days=1)
            if win is None:
                continue
            lo, hi = max(a, win[0]), min(b, win[1])
            if hi > lo:
                total += hi - lo
        return total.total_seconds() / 3600

    def is_business_time(self, instant: dt.datetime) -> bool:
        instant = instant.astimezone(UTC)
        day = self._local_date(instant)
        for d in (day - dt.timedelta(days=1), day):
            win = self.window(d)
            if win and win[0] <= instant < win[1]:
                return True
        return False


def add_business_hours(*, organization, start: dt.datetime, hours: float) -> dt.datetime:
    """``start`` plus ``hours`` business hours of the organization's calendar (UTC result)."""
    return BusinessCalendar.for_organization(organization).add_hours(start, hours)


def business_hours_between(*, organization, start: dt.datetime, end: dt.datetime) -> float:
    """Business hours of the organization's calendar between two instants."""
    return BusinessCalendar.for_organization(organization).hours_between(start, end)
