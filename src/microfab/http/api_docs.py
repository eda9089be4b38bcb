"""The Swagger UI page at ``/docs``, from the vendored files and without inline script (the
content security policy allows none): ``/static/swagger-init.js`` reads its settings from the
``data-*`` attributes of its own ``<script>`` tag."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor/swagger-ui"


def swagger_ui_page(
    openapi_url: str = "/openapi.json", title: str = "microfab API"
) -> HTMLResponse:
    """The page: Swagger UI's CSS and bundle, then the script that starts it on ``openapi_url``
    (no call to validator.swagger.io: the plant may have no internet)."""
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{VENDOR}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{VENDOR}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js" data-openapi-url="{escape(openapi_url)}"></script>
</body>
</html>
"""
    return HTMLResponse(html)
