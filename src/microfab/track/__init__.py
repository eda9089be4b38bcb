"""Production tracking: work orders, WIP, genealogy, OEE and downtime, read from stored events.

Also the services the API and the pages share over a running plant: ``plant`` (store, factory
model and plant clock), ``event_query``, ``operator_input``, ``order_input``, ``dashboard``,
``gantt`` (plan against actual) and ``audit_trail``.
"""
