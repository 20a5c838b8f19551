"""Query parameters: the one place they are parsed (django-filter), for every list endpoint.

A bad value is a 400 envelope naming the parameter (``{"details": {"status": [...]}}``), never a
500 and never silently ignored: django-filter's own boolean widget maps ``?is_active=hacked`` to
"no filter", and a hand-written date parser let ``0000-01-01`` or ``2024-13-01`` reach the
database or ``datetime`` (ValueError -> 500). Views use the backend (``FilterBackend``, the
default in ``REST_FRAMEWORK``) or, where the values shape a computation rather than filter a
queryset, ``query_params``.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters import rest_framework as drf_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.exceptions import ValidationFailed

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class StrictBooleanField(forms.Field):
    """``true/false/1/0/yes/no`` (any case); anything else is an error, absent is None."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise forms.ValidationError("Expected true or false.", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


# PostgreSQL's range for a time zone offset (+-15:59); real offsets stay within -12:00..+14:00.
_MAX_OFFSET = dt.timedelta(hours=16)


class InstantField(forms.Field):
    """An ISO 8601 date-time (naive = UTC) or date (midnight UTC), as an aware UTC datetime.

    Out-of-range values (year 0, month 13, an offset beyond +-15:59, one that moves year 1
    before the start of ``datetime``) are the client's error, like any other malformed value.
    """

    default_error_messages = {
        "invalid": "Expected an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T09:00Z)."
    }

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip()
        try:
            moment = parse_datetime(text)
            if moment is None:
                day = parse_date(text)
                if day is None:
                    raise ValueError(text)
                moment = dt.datetime.combine(day, dt.time.min)
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=dt.UTC)
            if abs(moment.utcoffset()) >= _MAX_OFFSET:
                raise ValueError("offset")
            return moment.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantFilter(django_filters.Filter):
    field_class = InstantField


class ChoicesInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """Comma-separated values, each one of ``choices`` (``?status=pending,approved``)."""


class FilterSet(drf_filters.FilterSet):
    """Base of every FilterSet: model booleans are strict (an unknown value is a 400)."""

    FILTER_DEFAULTS = {
        **drf_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class FilterBackend(drf_filters.DjangoFilterBackend):
    """The default filter backend: FilterSets generated from ``filterset_fields`` are strict too."""

    filterset_base = FilterSet


def errors_of(filterset) -> dict[str, list[str]]:
    return {name: [str(m) for m in messages] for name, messages in filterset.errors.items()}


def query_params(filterset_class, request) -> dict:
    """Validated values of ``filterset_class``'s parameters (absent ones are None); 400 naming the bad ones."""
    filterset = filterset_class(request.query_params, queryset=filterset_class._meta.model.objects.none())
    if not filterset.is_valid():
        raise ValidationFailed("Invalid query parameter.", details=errors_of(filterset))
    return filterset.form.cleaned_data
