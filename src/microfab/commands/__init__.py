"""Every command of the ``microfab`` command line, one module per command group.

``microfab.cli`` is the entry point and only assembles them. Commands parse options, call the
domain code in ``track/``, ``plan/``, ``green/`` … or a runtime in ``runtime/``, and print through
the consoles of :mod:`microfab.console`; they hold no logic of their own. Options that several
groups share are in ``common.py`` (``--db``), ``mqtt_options.py`` and ``sim_options.py``.
"""
