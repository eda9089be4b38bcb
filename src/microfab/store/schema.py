"""Table definitions of the event store (SQLAlchemy Core); Alembic migrations create them.

``events`` is the append-only log. ``machine_status`` and ``order_status`` are read models updated
in the same transaction as each append, so they always agree with the log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime: every stored time is UTC, and SQLite (which keeps
    no zone) hands it back naive."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def sqlite_time(value: dt.datetime) -> str:
    """A time as :class:`UtcDateTime` stores it on SQLite, for statements that bypass SQLAlchemy's
    parameter processing: UTC, zone dropped, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def stored_time(value: Any) -> dt.datetime | None:
    """A time column's value as read without SQLAlchemy, as an aware UTC datetime: SQLite hands
    back the text SQLAlchemy wrote (parsed here as SQLAlchemy parses it), PostgreSQL a datetime."""
    if value is None:
        return None
    return as_utc(dt.datetime.fromisoformat(value) if isinstance(value, str) else value)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A point in time, stored in UTC, read back as an aware UTC datetime on every back end.

    The column is ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL and SQLAlchemy's DateTime text
    (``YYYY-MM-DD HH:MM:SS.ffffff``, zone dropped) on SQLite, as before this type existed, so
    stored data reads the same. A bound value is converted to UTC first (SQLite would otherwise
    keep the local wall time of an aware value); a naive value is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return as_utc(value) if isinstance(value, dt.datetime) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime


metadata = MetaData()

SeqType = BigInteger().with_variant(Integer(), "sqlite")
"""Monotonic ingest sequence; INTEGER on SQLite so that it aliases the rowid."""

EventIdType = String(64).with_variant(String(64, collation="C"), "postgresql")
"""Event ids compare byte-wise on every back end, so (ts, id) order is the same everywhere."""

events = Table(
    "events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", EventIdType, nullable=False),
    Column("ts", UtcDateTime(), nullable=False),
    Column("ingest_ts", UtcDateTime(), nullable=False),
    Column("machine", String(210), nullable=False),
    Column("stream", String(16), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("body", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("id", name="uq_events_id"),
    Index("ix_events_ts_id", "ts", "id"),
    Index("ix_events_machine_stream_ts", "machine", "stream", "ts"),
)

factory_versions = Table(
    "factory_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime(), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("company", String(200), nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("document", JSON, nullable=False),
)

machine_status = Table(
    "machine_status",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("state", String(16)),
    Column("reason", String(64)),
    Column("state_ts", UtcDateTime()),
    Column("state_event", String(64)),
    Column("good", BigInteger, nullable=False, default=0),
    Column("scrap", BigInteger, nullable=False, default=0),
    Column("kwh", Float),
    Column("kwh_ts", UtcDateTime()),
    Column("order_id", String(64)),
    Column("order_ts", UtcDateTime()),
    Column("last_ts", UtcDateTime()),
    Column("events", BigInteger, nullable=False, default=0),
)

order_status = Table(
    "order_status",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("product", String(64)),
    Column("quantity", Integer),
    Column("status", String(16), nullable=False),
    Column("operation", Integer),
    Column("machine", String(210)),
    Column("operation_ts", UtcDateTime()),
    Column("released_ts", UtcDateTime()),
    Column("release_ts", UtcDateTime()),
    Column("release_event", String(64)),
    Column("completed_ts", UtcDateTime()),
    Column("last_ts", UtcDateTime(), nullable=False),
    Column("good", BigInteger, nullable=False, default=0),
    Column("scrap", BigInteger, nullable=False, default=0),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("source", String(32), nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("key", name="uq_dead_letters_key"),
)

unknown_machines = Table(
    "unknown_machines",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("first_ts", UtcDateTime(), nullable=False),
    Column("last_ts", UtcDateTime(), nullable=False),
    Column("events", BigInteger, nullable=False, default=0),
)

# ---------------------------------------------------------------- identity, audit, retention
# (revision 0003; see store/identity.py, store/audit.py, store/retention.py)

users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(32)),
    Column("permissions", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
    Column("last_used_at", UtcDateTime()),
    UniqueConstraint("secret_hash", name="uq_api_tokens_secret_hash"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Index("ix_login_attempts_user_at", "user_name", "at"),
    Index("ix_login_attempts_client_at", "client", "at"),
)

store_secrets = Table(
    "store_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)
"""Secrets the store keeps for itself (revision 0006): ``login_names``, the HMAC key that turns
unknown user names in ``login_attempts`` into keyed hashes."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),
    Column("before", Text),
    Column("after", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

telemetry_hourly = Table(
    "telemetry_hourly",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("hour", UtcDateTime(), primary_key=True),
    Column("samples", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("minimum", Float, nullable=False),
    Column("maximum", Float, nullable=False),
)

# ---------------------------------------------------------------- alerts
# (revision 0004; see store/alerts.py, quality/alerts.py)

alerts = Table(
    "alerts",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("machine", String(210), nullable=False),
    Column("cause", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("first_ts", UtcDateTime(), nullable=False),
    Column("last_ts", UtcDateTime(), nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("acked_at", UtcDateTime()),
    Column("acked_by", String(200)),
    Column("closed_at", UtcDateTime()),
    Column("closed_by", String(200)),
    UniqueConstraint("rule", "machine", "cause", "first_ts", name="uq_alerts_occurrence"),
    Index("ix_alerts_key", "rule", "machine", "cause"),
    Index("ix_alerts_state", "state"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("alert_id", SeqType, primary_key=True, autoincrement=False),
    Column("event", String(16), primary_key=True),
    Column("channel", String(300), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("delivered_at", UtcDateTime()),
    Column("error", Text),
)

# ---------------------------------------------------------------- production read models
# (revision 0005; see store/production_views.py, track/production.py)

production_hourly = Table(
    "production_hourly",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("hour", UtcDateTime(), primary_key=True),
    Column("order_id", String(64), primary_key=True),  # '' when the count named no order
    Column("operation", Integer, primary_key=True),  # -1 when it named no operation
    Column("good", BigInteger, nullable=False),
    Column("scrap", BigInteger, nullable=False),
    Column("outside_good", BigInteger, nullable=False),
    Column("outside_scrap", BigInteger, nullable=False),
    Index("ix_production_hourly_hour", "hour"),
    Index("ix_production_hourly_order", "order_id"),
)

state_spans = Table(
    "state_spans",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("start", UtcDateTime(), primary_key=True),
    Column("end", UtcDateTime()),  # NULL: the machine is still in this state
    Column("state", String(16), nullable=False),
    Column("reason", String(64), nullable=False),  # '' when the change gave no reason
    Column("inside_s", Float, nullable=False),  # seconds within working time (0 while open)
)

# (revision 0007) energy per machine × carrier × site hour, split from the meter intervals;
# material consumed per machine × order × site hour (amounts in whole milli-units)

meter_intervals = Table(
    "meter_intervals",
    metadata,
    Column("machine", String(210), nullable=False),
    Column("carrier", String(32), nullable=False),  # electricity or a fuel carrier
    Column("start", UtcDateTime(), nullable=False),  # the earlier reading
    Column("end", UtcDateTime(), nullable=False),  # the later reading
    Column("unit", String(64), nullable=False),
    Column("milli", BigInteger, nullable=False),  # energy between the readings, never negative
    Column("anomaly", String(16), nullable=False),  # '' or 'reset' (the later reading is lower)
    Index("ix_meter_intervals_meter", "machine", "carrier", "start"),
)

energy_hourly = Table(
    "energy_hourly",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("carrier", String(32), primary_key=True),
    Column("hour", UtcDateTime(), primary_key=True),
    Column("unit", String(64), nullable=False),
    Column("milli", BigInteger, nullable=False),
    Index("ix_energy_hourly_hour", "hour"),
)

material_hourly = Table(
    "material_hourly",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("hour", UtcDateTime(), primary_key=True),
    Column("order_id", String(64), primary_key=True),  # '' when the event named no order
    Column("material", String(64), primary_key=True),
    Column("unit", String(64), primary_key=True),
    Column("milli", BigInteger, nullable=False),
    Index("ix_material_hourly_hour", "hour"),
)

view_checkpoints = Table(
    "view_checkpoints",
    metadata,
    Column("view", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # the last event (ingest seq) taken in
    Column("factory_version", Integer),  # whose calendars split working time
    Column("updated_at", UtcDateTime(), nullable=False),
)

view_skipped = Table(
    "view_skipped",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
)

# ---------------------------------------------------------------- vision inspection models
# (revision 0009; see store/vision.py, vision/)

vision_models = Table(
    "vision_models",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("task", String(16), nullable=False),
    Column("card", JSON, nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
)

uplink_checkpoints = Table(
    "uplink_checkpoints",
    metadata,
    Column("uplink", String(300), primary_key=True),  # site@host:port of the HQ broker
    Column("seq", BigInteger, nullable=False),  # last event acknowledged with all before it
    Column("event_ts", UtcDateTime()),  # its event time
    Column("ingest_ts", UtcDateTime()),  # its ingest time at the site
    Column("acknowledged", BigInteger, nullable=False),  # events acknowledged in all
    Column("updated_at", UtcDateTime(), nullable=False),
)

site_access = Table(
    "site_access",
    metadata,
    Column("actor", String(200), primary_key=True),  # user:NAME or token:NAME
    Column("site", String(40), primary_key=True),
    Column("granted_at", UtcDateTime(), nullable=False),
    Column("granted_by", String(200), nullable=False),
)

uplink_status = Table(
    "uplink_status",
    metadata,
    Column("site", String(40), primary_key=True),
    Column("checkpoint", BigInteger, nullable=False),
    Column("lag_events", BigInteger, nullable=False),
    Column("lag_s", Float, nullable=False),
    Column("reported_at", UtcDateTime(), nullable=False),  # the uplink's clock
    Column("received_at", UtcDateTime(), nullable=False),  # HQ's ingest clock
)

# ---------------------------------------------------------------- maintenance and safety
# (revision 0010; see store/maintenance.py, store/safety.py, maint/, safety/)

maint_orders = Table(
    "maint_orders",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("machine", String(210), nullable=False),
    Column("kind", String(16), nullable=False),  # corrective, predictive, preventive
    Column("source", String(16), nullable=False),  # manual, alert, machine_down, health, plan
    Column("source_ref", String(200), nullable=False),  # alert id, event id, plan id or ''
    Column("priority", Integer, nullable=False),  # 1 (most urgent) … 9
    Column("problem", Text, nullable=False),
    Column("cause_code", String(64)),
    Column("actions", Text, nullable=False),
    Column("technician", String(200)),
    Column("state", String(16), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("window_start", UtcDateTime()),  # the scheduled window
    Column("window_end", UtcDateTime()),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("result", Text),
    Column("labour_min", Float, nullable=False),
    Column("labour_cost", Float, nullable=False),  # HK$
    Column("plan_id", Integer),
    Column("evidence", JSON, nullable=False),
    Column("photos", JSON, nullable=False),
    Index("ix_maint_orders_machine", "machine"),
    Index("ix_maint_orders_state", "state"),
)

maint_plans = Table(
    "maint_plans",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("machine", String(210), nullable=False),
    Column("name", String(64), nullable=False),
    Column("basis", String(16), nullable=False),  # calendar, run_hours, cycles, condition
    Column("interval", Float, nullable=False),  # days, running hours or cycles
    Column("lead", Float, nullable=False),  # in the basis' unit: order this much ahead
    Column("metric", String(64)),  # condition plans: telemetry metric …
    Column("limit", Float),  # … and the limit that makes the job due
    Column("duration_min", Float, nullable=False),
    Column("since", UtcDateTime(), nullable=False),  # counting starts here (or the last job)
    Column("active", Integer, nullable=False),
    UniqueConstraint("machine", "name", name="uq_maint_plans_name"),
)

spare_parts = Table(
    "spare_parts",
    metadata,
    Column("part", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("on_hand", Float, nullable=False),
    Column("min_stock", Float, nullable=False),
    Column("critical", Integer, nullable=False),
    Column("unit_cost", Float, nullable=False),  # HK$
)

part_issues = Table(
    "part_issues",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False),
    Column("part", String(64), nullable=False),
    Column("qty", Float, nullable=False),
    Column("unit_cost", Float, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("by", String(200), nullable=False),
    Index("ix_part_issues_order", "order_id"),
)

maint_photos = Table(
    "maint_photos",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("order_id", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("data", Text, nullable=False),  # base64: backups are JSON lines
    Column("at", UtcDateTime(), nullable=False),
    Column("by", String(200), nullable=False),
    Index("ix_maint_photos_order", "order_id"),
)

safety_incidents = Table(
    "safety_incidents",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("site", String(40), nullable=False),
    Column("machine", String(210)),
    Column("kind", String(16), nullable=False),  # incident, near_miss
    Column("what", Text, nullable=False),
    Column("location", String(200), nullable=False),
    Column("reported_by", String(200), nullable=False),
    Column("injury", Integer, nullable=False),
    Column("lost_time", Integer, nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("actions", Text, nullable=False),
    Column("state", String(16), nullable=False),  # reported, investigating, closed
    Column("closed_at", UtcDateTime()),
    Column("closed_by", String(200)),
    Column("event_id", String(64)),
    Index("ix_safety_incidents_site", "site"),
)

# (revision 0008) stock: every movement's leg per item × lot × location with the balance after
# it (quantities in whole micro-units of the item's stock unit), the balance now, and each lot

stock_moves = Table(
    "stock_moves",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("event_id", EventIdType, nullable=False),
    Column("ts", UtcDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("item", String(64), nullable=False),
    Column("lot", String(64), nullable=False),  # '' when the item is not lot-tracked
    Column("location", String(64), nullable=False),
    Column("delta", BigInteger, nullable=False),  # micro-units added (negative: taken)
    Column("balance", BigInteger, nullable=False),  # on hand after this leg, micro-units
    Column("counted", SmallInteger, nullable=False),  # 1: a count, which sets the balance
    Column("order_id", String(64), nullable=False),  # '' when none
    Column("ref", String(64), nullable=False),  # '' when none
    Index("ix_stock_moves_key", "item", "lot", "location", "ts", "event_id"),
    Index("ix_stock_moves_ts", "ts"),
    Index("ix_stock_moves_lot", "lot"),
    Index("ix_stock_moves_order", "order_id"),
)

stock_balances = Table(
    "stock_balances",
    metadata,
    Column("item", String(64), primary_key=True),
    Column("lot", String(64), primary_key=True),
    Column("location", String(64), primary_key=True),
    Column("unit", String(64), nullable=False),
    Column("qty", BigInteger, nullable=False),  # on hand now, micro-units
    Column("first_ts", UtcDateTime(), nullable=False),  # the first leg's time
    Column("last_ts", UtcDateTime(), nullable=False),  # the last leg's time
    Column("last_event", EventIdType, nullable=False),
    Index("ix_stock_balances_location", "location"),
    Index("ix_stock_balances_last_ts", "last_ts"),
)

stock_lots = Table(
    "stock_lots",
    metadata,
    Column("item", String(64), primary_key=True),
    Column("lot", String(64), primary_key=True),
    Column("supplier", String(64)),
    Column("expiry", UtcDateTime()),
    Column("received_ts", UtcDateTime()),
    Column("cost_hkd", Float),
    Column("held", SmallInteger, nullable=False),  # 1: quarantined
    Column("hold_ts", UtcDateTime()),
    Column("hold_event", EventIdType),
    Column("hold_reason", String(64)),
    Index("ix_stock_lots_expiry", "expiry"),
)
