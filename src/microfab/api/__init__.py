"""The REST API and the dashboard's web app (FastAPI), over one event store.

Public surface: :func:`create_app` (the ASGI app), :class:`BackgroundServer` (serve it on a
thread, as ``microfab demo`` does) and :func:`serve_forever` (as ``microfab serve`` does).
Every route but the public ones needs a signed-in principal (:mod:`microfab.api.auth`).
"""

from microfab.api.app import create_app
from microfab.api.server import BackgroundServer, bind, serve_forever, url_of

__all__ = ["BackgroundServer", "bind", "create_app", "serve_forever", "url_of"]
