import datetime as dt
import zoneinfo

import pytest

from core.testing import make_org
from organizations.calendar import BusinessCalendar, add_business_hours, business_hours_between
from organizations.models import Holiday

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NY = zoneinfo.ZoneInfo("America/New_York")


def berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def cal(**kwargs) -> BusinessCalendar:
    kwargs.setdefault("timezone", "Europe/Berlin")
    return BusinessCalendar(**kwargs)


def test_within_one_day():
    assert cal().add_hours(berlin(2026, 1, 14, 10, 0), 3) == berlin(2026, 1, 14, 13, 0)


def test_zero_hours_is_start_and_result_is_utc():
    start = berlin(2026, 1, 14, 22, 0)
    out = cal().add_hours(start, 0)
    assert out == start and out.tzinfo == dt.UTC


def test_ends_exactly_at_close_not_next_morning():
    assert cal().add_hours(berlin(2026, 1, 14, 9, 0), 8) == berlin(2026, 1, 14, 17, 0)


def test_crosses_night():
    # Wed 15:00 + 4h = 2h on Wed + 2h on Thu -> Thu 11:00
    assert cal().add_hours(berlin(2026, 1, 14, 15, 0), 4) == berlin(2026, 1, 15, 11, 0)


def test_start_at_night_or_before_opening_counts_from_opening():
    assert cal().add_hours(berlin(2026, 1, 14, 23, 30), 1) == berlin(2026, 1, 15, 10, 0)
    assert cal().add_hours(berlin(2026, 1, 15, 6, 0), 1.5) == berlin(2026, 1, 15, 10, 30)


def test_crosses_weekend():
    # Fri 16:00 + 3h -> 1h Fri, Mon 9:00 + 2h
    assert cal().add_hours(berlin(2026, 1, 16, 16, 0), 3) == berlin(2026, 1, 19, 11, 0)
    # started on Saturday
    assert cal().add_hours(berlin(2026, 1, 17, 12, 0), 8) == berlin(2026, 1, 19, 17, 0)


def test_holidays_are_skipped():
    # Mon 2026-01-19 is a holiday: Fri 16:00 + 3h -> Tue 11:00
    c = cal(holidays=[dt.date(2026, 1, 19)])
    assert c.add_hours(berlin(2026, 1, 16, 16, 0), 3) == berlin(2026, 1, 20, 11, 0)


def test_custom_work_days_and_hours():
    # Sunday-Thursday, 08:00-12:00
    c = cal(work_days=[6, 0, 1, 2, 3], work_start=dt.time(8), work_end=dt.time(12))
    # Thu 11:00 + 2h -> 1h Thu, skip Fri/Sat, Sun 08:00 + 1h
    assert c.add_hours(berlin(2026, 1, 15, 11, 0), 2) == berlin(2026, 1, 18, 9, 0)


def test_multi_day_sla():
    # 40 business hours = one full week (Mon 9:00 -> Fri 17:00)
    assert cal().add_hours(berlin(2026, 1, 12, 9, 0), 40) == berlin(2026, 1, 16, 17, 0)
    assert cal().add_hours(berlin(2026, 1, 12, 9, 0), 40.5) == berlin(2026, 1, 19, 9, 30)


def test_dst_spring_forward_berlin():
    # Sunday 2026-03-29 clocks jump 02:00 -> 03:00 (CET -> CEST). Fri 16:00 CET + 3h -> Mon 11:00 CEST.
    out = cal().add_hours(berlin(2026, 3, 27, 16, 0), 3)
    assert out == berlin(2026, 3, 30, 11, 0)
    assert out == dt.datetime(2026, 3, 30, 9, 0, tzinfo=dt.UTC)  # UTC offset changed from +1 to +2


def test_dst_fall_back_berlin():
    # Sunday 2026-10-25 clocks go back 03:00 -> 02:00 (CEST -> CET). Fri 16:00 CEST + 3h -> Mon 11:00 CET.
    out = cal().add_hours(berlin(2026, 10, 23, 16, 0), 3)
    assert out == berlin(2026, 10, 26, 11, 0)
    assert out == dt.datetime(2026, 10, 26, 10, 0, tzinfo=dt.UTC)


def test_dst_change_inside_working_hours_counts_real_time():
    # A 7-day calendar open 00:00-06:00: on 2026-03-29 the window is only 5 real hours long.
    c = cal(work_days=range(7), work_start=dt.time(0), work_end=dt.time(6))
    assert c.hours_between(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 29, 6, 0)) == 5
    assert c.add_hours(berlin(2026, 3, 29, 0, 0), 5) == berlin(2026, 3, 29, 6, 0)
    # ... and on 2026-10-25 it is 7 real hours long.
    assert c.hours_between(berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 25, 6, 0)) == 7


def test_timezone_of_the_organization_not_of_the_input():
    # 14:00 UTC is 09:00 in New York (January, EST): 8 business hours -> 17:00 New York = 22:00 UTC
    start = dt.datetime(2026, 1, 14, 14, 0, tzinfo=dt.UTC)
    c = BusinessCalendar(timezone="America/New_York")
    assert c.add_hours(start, 8) == dt.datetime(2026, 1, 14, 22, 0, tzinfo=dt.UTC)
    assert c.add_hours(start, 8).astimezone(NY).hour == 17


def test_hours_between_roundtrip():
    c = cal(holidays=[dt.date(2026, 1, 19)])
    start = berlin(2026, 1, 14, 13, 17)
    for hours in (0.25, 1, 3.5, 8, 13, 27, 80):
        end = c.add_hours(start, hours)
        assert c.hours_between(start, end) == pytest.approx(hours)
    assert c.hours_between(berlin(2026, 1, 16, 18, 0), berlin(2026, 1, 20, 8, 0)) == 0
    assert c.hours_between(berlin(2026, 1, 15, 10, 0), berlin(2026, 1, 14, 10, 0)) == -8


def test_is_business_time():
    c = cal()
    assert c.is_business_time(berlin(2026, 1, 14, 9, 0))
    assert not c.is_business_time(berlin(2026, 1, 14, 17, 0))
    assert not c.is_business_time(berlin(2026, 1, 17, 12, 0))


def test_invalid_inputs():
    with pytest.raises(ValueError):
        cal().add_hours(dt.datetime(2026, 1, 14, 10, 0), 1)  # naive
    with pytest.raises(ValueError):
        cal().add_hours(berlin(2026, 1, 14, 10, 0), -1)
    with pytest.raises(ValueError):
        cal(work_start=dt.time(17), work_end=dt.time(9))


def test_calendar_that_never_opens_raises():
    c = cal(work_days=[0], holidays=[dt.date(2026, 1, 12) + dt.timedelta(weeks=w) for w in range(2000)])
    with pytest.raises(ValueError):
        c.add_hours(berlin(2026, 1, 12, 9, 0), 1)


@pytest.mark.django_db
def test_organization_functions_use_its_timezone_days_and_holidays():
    org = make_org(
        "cal-org", timezone="Europe/Berlin", work_days=[0, 1, 2, 3], work_start=dt.time(8), work_end=dt.time(16)
    )
    Holiday.objects.create(organization=org, date=dt.date(2026, 1, 19), name="Closed")
    other = make_org("cal-other")  # UTC, Mon-Fri 9-17, no holidays: must not see org's holiday
    start = berlin(2026, 1, 15, 15, 0)  # Thursday 15:00 Berlin; Friday is off, Monday a holiday
    assert add_business_hours(organization=org, start=start, hours=2) == berlin(2026, 1, 20, 9, 0)
    assert business_hours_between(organization=org, start=start, end=berlin(2026, 1, 20, 9, 0)) == 2
    # the other org: Thursday 14:00 UTC + 2h = 16:00 UTC same day
    assert add_business_hours(organization=other, start=start, hours=2) == dt.datetime(
        2026, 1, 15, 16, 0, tzinfo=dt.UTC
    )


@pytest.mark.django_db
def test_the_cached_calendar_follows_holiday_changes(django_assert_num_queries):
    """Issue 14: the calendar is kept in process; a holiday change through the services is seen."""
    from organizations import services

    org = make_org("cal-cache")
    monday = dt.datetime(2026, 1, 19, 9, 0, tzinfo=dt.UTC)
    assert add_business_hours(organization=org, start=monday, hours=2) == monday + dt.timedelta(hours=2)
    with django_assert_num_queries(0):  # the holidays are not read again
        assert add_business_hours(organization=org, start=monday, hours=2) == monday + dt.timedelta(hours=2)

    holiday = services.holiday_create(actor=None, organization=org, date=dt.date(2026, 1, 19), name="Closed")
    org.refresh_from_db()
    assert add_business_hours(organization=org, start=monday, hours=2) == monday + dt.timedelta(days=1, hours=2)
    services.holiday_update(actor=None, holiday=holiday, date=dt.date(2026, 1, 20))
    org.refresh_from_db()
    assert add_business_hours(organization=org, start=monday, hours=9) == monday + dt.timedelta(days=2, hours=1)
    services.holiday_delete(actor=None, holiday=holiday)
    org.refresh_from_db()
    assert add_business_hours(organization=org, start=monday, hours=2) == monday + dt.timedelta(hours=2)
