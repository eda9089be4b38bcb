"""The dashboard: server-rendered pages (Jinja2), live panels over SSE, operator pages, reports.

Templates are in ``templates/``, styles and scripts in ``static/``; ECharts is vendored in
``static/vendor/echarts/`` (version, licence and source in its NOTICE), so nothing is fetched
from the internet.
"""
