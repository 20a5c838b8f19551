"""OPTIONS answers (DRF metadata) that never load an object a route does not name.

DRF's ``SimpleMetadata`` calls ``view.get_object()`` for every route that allows PUT, including
collection-level actions such as ``notifications/preferences/`` that have no ``pk`` in their URL;
that raised (500). Here ``get_object`` runs only when the URL carries the view's lookup argument,
and the object-level check still applies then (an object of another organization stays a 404:
its actions are simply not described).
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import clone_request


class SafeMetadata(SimpleMetadata):
    def determine_actions(self, request, view):
        actions = {}
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
        names_an_object = bool(lookup) and lookup in (getattr(view, "kwargs", None) or {})
        for method in {"PUT", "POST"} & set(view.allowed_methods):
            view.request = clone_request(request, method)
            try:
                if hasattr(view, "check_permissions"):
                    view.check_permissions(view.request)
                if method == "PUT" and names_an_object and hasattr(view, "get_object"):
                    view.get_object()
                if not hasattr(view, "get_serializer"):
                    continue
                serializer = view.get_serializer()
            except (exceptions.APIException, PermissionDenied, Http404):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(serializer)
        return actions
