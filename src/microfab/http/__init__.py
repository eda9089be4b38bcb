"""The HTTP plumbing the JSON routes (:mod:`microfab.api`) and the pages (:mod:`microfab.web`)
share: access control (:mod:`~microfab.http.auth`), the one error shape
(:mod:`~microfab.http.errors`), route dependencies (:mod:`~microfab.http.deps`) and serving with
uvicorn (:mod:`~microfab.http.server`).

It knows neither routes nor pages; :func:`microfab.app.create_app` puts them together.
"""
