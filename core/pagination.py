from rest_framework.pagination import PageNumberPagination


class CountedRows:
    """A list read for Django's ``Paginator`` whose page query also carries the total.

    ``fetch(offset, limit)`` returns ``(items, total)``, the total being the row count across all
    pages as the same statement computes it (``COUNT(*) OVER ()``), None when the page is empty;
    ``count_all()`` counts on its own. The page asked for (``?page=``) is read in advance, so a
    valid page costs one statement instead of a COUNT and a SELECT; ``last``, a malformed number
    or a page past the end (whose answer needs the total) fall back to ``count_all``.
    """

    def __init__(self, fetch, count_all, *, page, page_size: int):
        self._fetch, self._count_all, self._page_size = fetch, count_all, page_size
        self._offset, self._items = None, None
        try:
            number = int(page)  # as Paginator.validate_number reads it
        except (TypeError, ValueError):
            number = 0
        self._number = number

    def count(self) -> int:
        if self._number < 1:
            return self._count_all()
        offset = (self._number - 1) * self._page_size
        items, total = self._fetch(offset, self._page_size)
        if items:
            self._offset, self._items = offset, items
            return total
        return 0 if offset == 0 else self._count_all()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list:
        start, stop = key.start or 0, key.stop
        if self._items is not None and start == self._offset and stop - start <= len(self._items):
            return self._items[: stop - start]
        return self._fetch(start, stop - start)[0] if stop > start else []


class DefaultPagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_rows(self, fetch, count_all, request, view=None) -> list:
        """``paginate_queryset`` over a ``CountedRows`` read: the same answers, links and errors."""
        rows = CountedRows(
            fetch,
            count_all,
            page=request.query_params.get(self.page_query_param) or 1,
            page_size=self.get_page_size(request),
        )
        return self.paginate_queryset(rows, request, view)
