"""Query parameters of ``GET users/``."""

import django_filters
from django.db.models import Q

from accounts.models import User
from core.filters import FilterSet

SEARCH_MAX_WORDS = 5  # each word is three ILIKEs: a bound on the query's cost


class UserFilter(FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=100,
        help_text="Words that must each appear in the first name, last name or e-mail (any case), "
        f"e.g. `alice`, `ali anders`, `@globex`; at most {SEARCH_MAX_WORDS} words.",
    )

    class Meta:
        model = User
        fields = ["department", "is_active", "is_staff"]

    def filter_search(self, queryset, name, value):
        for word in value.split()[:SEARCH_MAX_WORDS]:
            queryset = queryset.filter(
                Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
            )
        return queryset
