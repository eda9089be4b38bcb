"""CSV import of part counts for machines with no connection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from microfab.connect.csv_counts import import_counts_csv
from microfab.connect.publisher import ListPublisher
from microfab.errors import ImportFileError
from microfab.model.events import PartCount
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory

DATA = Path(__file__).parent / "data"
CNC1 = "kt/plant/line1/machining/cnc-1"
CNC2 = "kt/plant/line1/utility/cnc-2"
ROBOT1 = "kt/plant/line1/machining/robot-1"
HEADER = "ts,machine,good,scrap,order,operation\n"


@pytest.fixture
def factory(small_factory_text: str) -> Factory:
    return parse_factory(small_factory_text, "factory-small.yaml")


def counts(publisher: ListPublisher) -> list[PartCount]:
    assert all(isinstance(e, PartCount) for e in publisher.events)
    return [e for e in publisher.events if isinstance(e, PartCount)]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_every_row_becomes_a_count_event(factory: Factory) -> None:
    publisher = ListPublisher()
    report = import_counts_csv(DATA / "counts.csv", factory, publisher)
    assert (report.rows, report.lines, report.machines) == (4, 5, 3)
    events = counts(publisher)
    first = events[0]
    assert (first.ts, first.machine, first.good, first.scrap) == (
        utc("2026-11-23T01:00"),
        CNC1,
        120,
        3,
    )
    assert (first.order, first.operation) == ("WO-1001", 10)
    assert [e.machine for e in events] == [CNC1, CNC1, CNC2, ROBOT1]
    third = events[2]  # machine id only, empty scrap/order/operation
    assert (third.good, third.scrap, third.order, third.operation) == (95, 0, None, None)
    assert events[3].ts == utc("2026-11-23T03:00")
    assert all(e.id.startswith("csv-") and len(e.id) == 64 for e in events)
    assert len({e.id for e in events}) == 4


def test_naive_times_are_the_site_time_of_the_machine(factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "naive.csv"
    path.write_text(HEADER + "2026-11-23 08:00,cnc-1,5\n2026-11-23T08:00:00.250,cnc-2,6\n")
    publisher = ListPublisher()
    import_counts_csv(path, factory, publisher)
    hk = dt.timezone(dt.timedelta(hours=8))  # Asia/Hong_Kong has no daylight saving
    assert [e.ts for e in counts(publisher)] == [
        dt.datetime(2026, 11, 23, 8, tzinfo=hk),
        dt.datetime(2026, 11, 23, 8, 0, 0, 250_000, tzinfo=hk),
    ]


def test_machine_id_and_path_name_the_same_machine(factory: Factory, tmp_path: Path) -> None:
    by_id, by_path = tmp_path / "a.csv", tmp_path / "b.csv"
    by_id.write_text(HEADER + "2026-11-23T09:00:00+08:00,cnc-2,7,1,WO-9,10\n")
    by_path.write_text(
        # other column order, an extra unnamed column, a byte-order mark (Excel's "CSV UTF-8")
        f"\ufeffmachine,good,ts,scrap,operation,order,\n{CNC2},7,2026-11-23T01:00:00Z,1,10,WO-9,\n",
        encoding="utf-8",
    )
    first, second = ListPublisher(), ListPublisher()
    import_counts_csv(by_id, factory, first)
    import_counts_csv(by_path, factory, second)
    assert counts(first)[0].machine == CNC2
    assert first.events == second.events  # same content, same id: stored once


def test_reimport_gives_the_same_ids(factory: Factory, tmp_path: Path) -> None:
    copy = tmp_path / "copy-of-counts.csv"
    copy.write_bytes((DATA / "counts.csv").read_bytes())
    first, second = ListPublisher(), ListPublisher()
    import_counts_csv(DATA / "counts.csv", factory, first)
    import_counts_csv(copy, factory, second)
    assert [e.id for e in first.events] == [e.id for e in second.events]
    assert first.events == second.events


def test_reimport_into_a_store_stores_nothing_new(factory: Factory, db_url: str) -> None:
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db_url) as store:
        sink = StoreSink(store)
        import_counts_csv(DATA / "counts.csv", factory, sink)
        import_counts_csv(DATA / "counts.csv", factory, sink)
        assert (sink.totals.inserted, sink.totals.duplicates) == (4, 4)
        assert not sink.totals.conflicts


class Flushes(ListPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.flushed = 0

    def flush(self) -> None:
        self.flushed = len(self.events)


@pytest.mark.parametrize(
    ("bad_row", "column", "expected"),
    [
        ("23/11/2026 09:00,cnc-1,5", "ts", "is not an ISO-8601 time"),
        ("2026-11-23T09:00:00+08:00,press-9,5", "machine", "is not a machine of the factory"),
        ("2026-11-23T09:00:00+08:00,cnc-1,five", "good", "'five' is not a whole number"),
        ("2026-11-23T09:00:00+08:00,cnc-1,5,-1", "scrap", "'-1' is negative"),
        ("2026-11-23T09:00:00+08:00,cnc-1,5,0,WO-1,0", "operation", "routing step number"),
        (f"2026-11-23T09:00:00+08:00,cnc-1,5,0,{'W' * 65}", "order", "expected at most 64"),
    ],
)
def test_a_bad_row_stops_the_import_after_the_rows_before_it(
    factory: Factory, tmp_path: Path, bad_row: str, column: str, expected: str
) -> None:
    path = tmp_path / "bad.csv"
    good_rows = "2026-11-23T09:00:00+08:00,cnc-1,5\n2026-11-23T09:05:00+08:00,cnc-1,6\n"
    path.write_text(HEADER + good_rows + bad_row + "\n2026-11-23T09:10:00+08:00,cnc-1,7\n")
    publisher = Flushes()
    with pytest.raises(ImportFileError) as caught:
        import_counts_csv(path, factory, publisher)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: {column}: "), message
    assert expected in message
    assert "the 2 rows before it were imported" in message
    assert [e.good for e in counts(publisher)] == [5, 6]
    assert publisher.flushed == 2  # flushed before raising


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("", 1, "the file is empty"),
        ("time,machine,good\n", 1, "unknown column 'time'"),
        ("ts,machine,scrap\n", 1, "the header has no good column"),
        (HEADER + "2026-11-23T09:00:00+08:00,cnc-1,5,0,,,extra\n", 2, "expected 6 fields"),
        (HEADER + ",cnc-1,5\n", 2, "ts: empty"),
    ],
)
def test_header_and_shape_errors_are_located(
    factory: Factory, tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = tmp_path / "shape.csv"
    path.write_text(text)
    with pytest.raises(ImportFileError, match=rf"^{path}:{line}: .*{expected}"):
        import_counts_csv(path, factory, ListPublisher())


def test_text_that_is_not_utf8_is_located(factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        HEADER.encode() + b"2026-11-23T09:00:00+08:00,cnc-1,5\n2026-11-23 09:05,cnc-1,6,0,\xe9\n"
    )
    publisher = ListPublisher()
    with pytest.raises(ImportFileError, match=rf"^{path}:3: not UTF-8 text"):
        import_counts_csv(path, factory, publisher)
    assert len(publisher.events) == 1


def test_a_missing_file_is_an_import_error(factory: Factory, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_counts_csv(tmp_path / "nope.csv", factory, ListPublisher())
