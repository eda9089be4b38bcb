"""Command groups of the ``microfab`` command line, one module per group.

``microfab.cli`` is the entry point and assembles them; a group that grows past a few commands
gets its own module here so that ``cli.py`` stays readable. Commands only parse options, call the
domain code in ``track/``, ``plan/``, ``green/`` … and print; they hold no logic of their own.
"""
