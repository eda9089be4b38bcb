"""The ``microfab`` command line's entry point: the Typer app, its command groups, ``main()``.

Every command lives in :mod:`microfab.commands` (one module per group); this module only
assembles them and runs the app. Every command that touches data takes ``--db URL`` (default:
``MICROFAB_DB``, else ``sqlite:///microfab.db``). Errors from microfab print one sentence and exit
non-zero (2 for bad input, 1 otherwise); no traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from microfab.commands.alerts import alerts_app
from microfab.commands.ask import ask as ask_command
from microfab.commands.audit import audit_app
from microfab.commands.backup import backup as backup_command
from microfab.commands.backup import restore as restore_command
from microfab.commands.backup import retention_app
from microfab.commands.bench import bench as bench_command
from microfab.commands.broker import broker_app
from microfab.commands.carbon import carbon_app
from microfab.commands.config import config_app
from microfab.commands.connect import connect_app
from microfab.commands.db import db_app
from microfab.commands.deadletters import deadletters_app
from microfab.commands.deadletters_replay import replay as deadletters_replay_command
from microfab.commands.demo import demo as demo_command
from microfab.commands.events import events_app
from microfab.commands.factory import factory_app
from microfab.commands.factory import init as init_command
from microfab.commands.factory import validate as validate_command
from microfab.commands.funding import funding_app
from microfab.commands.haccp import haccp_app
from microfab.commands.hq import hq_app
from microfab.commands.ingest import ingest as ingest_command
from microfab.commands.maintenance import maintenance_app
from microfab.commands.oee import downtime as downtime_command
from microfab.commands.oee import oee as oee_command
from microfab.commands.orders import orders_app
from microfab.commands.orders import trace as trace_command
from microfab.commands.plan import plan_app
from microfab.commands.quality import anomalies as anomalies_command
from microfab.commands.quality import defects as defects_command
from microfab.commands.quality import health as health_command
from microfab.commands.quality import spc as spc_command
from microfab.commands.report import report_app
from microfab.commands.safety import safety_app
from microfab.commands.serve import serve as serve_command
from microfab.commands.sim import sim as sim_command
from microfab.commands.stock import stock_app
from microfab.commands.uplink import uplink as uplink_command
from microfab.commands.users import tokens_app, users_app
from microfab.commands.version import version as version_command
from microfab.commands.views import db_rebuild_views, db_status, orders_orphans
from microfab.commands.vision import vision_app
from microfab.console import err
from microfab.errors import LocatedFileError, MicrofabError
from microfab.logs import configure_logging

app = typer.Typer(
    name="microfab",
    help="Open-source operating system for Hong Kong smart micro-factories 智能微工廠: "
    "collect → track → plan → prove.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(events_app, name="events")
app.add_typer(factory_app, name="factory")
app.add_typer(db_app, name="db")
app.add_typer(connect_app, name="connect")
app.add_typer(deadletters_app, name="deadletters")
deadletters_app.command("replay")(deadletters_replay_command)
app.command("oee")(oee_command)
app.command("downtime")(downtime_command)
app.add_typer(orders_app, name="orders")
app.command("trace")(trace_command)
app.add_typer(plan_app, name="plan")
app.command("serve")(serve_command)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.add_typer(retention_app, name="retention")
app.command("spc")(spc_command)
app.command("anomalies")(anomalies_command)
app.command("health")(health_command)
app.command("defects")(defects_command)
app.add_typer(alerts_app, name="alerts")
app.add_typer(haccp_app, name="haccp")
app.add_typer(carbon_app, name="carbon")
app.add_typer(funding_app, name="funding")
app.add_typer(report_app, name="report")
db_app.command("rebuild-views")(db_rebuild_views)
db_app.command("status")(db_status)
orders_app.command("orphans")(orders_orphans)
app.command("version")(version_command)
app.command("init")(init_command)
app.command("validate")(validate_command)
app.command("demo")(demo_command)
app.command("sim")(sim_command)
app.command("bench")(bench_command)
app.command("ingest")(ingest_command)
app.add_typer(broker_app, name="broker")
app.add_typer(config_app, name="config")
app.add_typer(vision_app, name="vision")
app.command("ask")(ask_command)
# multi-site (issue 20): the uplink to HQ and HQ's registry of sites
app.command("uplink")(uplink_command)
app.add_typer(hq_app, name="hq")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(safety_app, name="safety")
app.add_typer(stock_app, name="stock")


def main() -> None:
    """Entry point: set up logging once, run the app, turn microfab errors into one line on
    stderr."""
    configure_logging()
    try:
        app()
    except LocatedFileError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except MicrofabError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
