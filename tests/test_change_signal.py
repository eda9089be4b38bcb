"""Word of new events reaches live views without polling: PostgreSQL's NOTIFY from any writer
process, and this process's own appends on either back end (store/change_signal.py)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from conftest import pg_create_database, pg_drop_database
from microfab.store import EventStore, open_store
from microfab.store.change_signal import watch
from webapp import CNC1, event

WRITE_FROM_ANOTHER_PROCESS = """
import sys
from microfab.store import open_store
sys.path.insert(0, "tests")
from webapp import CNC1, event
with open_store(sys.argv[1]) as store:
    result = store.append([event("other-1", "2026-11-23T09:00:00+08:00", CNC1, "count", good=2)])
    assert result.inserted == 1
"""


def test_an_append_in_this_process_is_heard_until_the_watch_closes(store: EventStore) -> None:
    heard = threading.Event()
    with_it = watch(store.engine, heard.set)
    try:
        store.append([event("c-1", "2026-11-23T08:00:00+08:00", CNC1, "count", good=1)])
        assert heard.wait(10)
        heard.clear()
        store.append([event("c-2", "2026-11-23T08:01:00+08:00", CNC1, "count", good=1)])
        assert heard.wait(10)
    finally:
        with_it.close()
    heard.clear()
    store.append([event("c-3", "2026-11-23T08:02:00+08:00", CNC1, "count", good=1)])
    assert not heard.wait(0.3)  # closed: nothing more is heard


@pytest.mark.postgres
def test_postgresql_notifies_a_commit_made_by_another_process(pg_template: str) -> None:
    url = pg_create_database(pg_template)
    heard = threading.Event()
    try:
        with open_store(url) as store:
            with_it = watch(store.engine, heard.set)
            try:
                # the listener calls back once when it starts (commits it may have missed)
                assert heard.wait(10) and with_it.listening
                heard.clear()
                subprocess.run(
                    [sys.executable, "-c", WRITE_FROM_ANOTHER_PROCESS, url], check=True, timeout=60
                )
                assert heard.wait(10), "no NOTIFY reached the listener"
                assert store.count() == 1
            finally:
                with_it.close()
            assert not with_it.listening
    finally:
        pg_drop_database(url)
