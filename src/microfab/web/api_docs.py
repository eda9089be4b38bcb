"""The API docs page (``/docs``): the vendored Swagger UI over ``/openapi.json``, with a link
back to the app.

No inline script (the page works under a Content-Security-Policy without ``'unsafe-inline'``):
Swagger UI starts from ``static/api-docs.js``, and nothing is fetched from outside the app.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse


def api_docs_page(request: Request) -> HTMLResponse:
    """The page, from ``templates/api_docs.html``."""
    from microfab.web.pages import templates

    response = templates.TemplateResponse(request, "api_docs.html", {"page": "docs"})
    assert isinstance(response, HTMLResponse)
    return response
