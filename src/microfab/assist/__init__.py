"""The plant assistant: questions in English, Traditional Chinese or Cantonese answered offline
with the numbers of microfab's own read functions (docs/assistant.md).

:func:`microfab.assist.assistant.ask` is the one entry point the CLI, the API and the dashboard's
chat box call: it refuses bad input, understands the question with rules and fuzzy matching
(:mod:`~microfab.assist.understand`), checks the caller's permission and runs one read-only tool
(:mod:`~microfab.assist.tools`), whose numbers are the ones the linked view shows.
"""
