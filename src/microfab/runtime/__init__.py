"""Runtimes that wire adapters, store, simulator and web app together, without the command line.

A command in :mod:`microfab.commands` parses options, calls a runtime here and prints; a test
drives the same runtime directly.
"""
