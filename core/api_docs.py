"""The API docs pages (Swagger UI, ReDoc) with a Content-Security-Policy that keeps them on this server.

Their assets are served locally (drf-spectacular-sidecar); the policy also stops what the bundles
would still fetch on their own (ReDoc's sidebar loads its vendor's logo from a CDN), so the pages
work, and leak nothing, without the internet.
"""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)


class _SameOriginOnly:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerView(_SameOriginOnly, SpectacularSwaggerView):
    pass


class RedocView(_SameOriginOnly, SpectacularRedocView):
    pass
