"""The JSON API under ``/api/v1`` (and PACT's ``/3/footprints``): one route module per resource in
:mod:`microfab.api.routes`.

Routes only translate HTTP to calls of the domain services (``track/``, ``plan/``, ``green/``,
``quality/``, ``funding/``) and back; auth, the error shape and shared dependencies come from
:mod:`microfab.http`. The app that serves them is :func:`microfab.app.create_app`.
"""
