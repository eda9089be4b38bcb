"""Factory-file commands: ``init``, ``validate`` and ``factory apply|show|schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from microfab.commands.common import DbOption
from microfab.console import out
from microfab.errors import InputError, NoFactoryError
from microfab.model.factory import Factory
from microfab.model.factory_file import load_factory

factory_app = typer.Typer(help="Store and inspect the factory model.", no_args_is_help=True)


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write factory.yaml into")] = Path(
        "."
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing factory.yaml")
    ] = False,
) -> None:
    """Write a commented starter factory file (factory.yaml) to edit for your plant."""
    from importlib.resources import files

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "factory.yaml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force to overwrite it")
    template = files("microfab").joinpath("templates/factory.yaml").read_text(encoding="utf-8")
    target.write_text(template, encoding="utf-8")
    out.print(f"wrote {target}")
    out.print(f"next: edit it, then run microfab validate {target}")


def _factory_summary(factory: Factory) -> str:
    refs = factory.machines()
    lines = {(r.site.id, r.area.id, r.line.id) for r in refs}
    return (
        f"{factory.company.name}: {len(factory.sites)} site(s), {len(lines)} line(s), "
        f"{len(refs)} machines, {len(factory.products)} products, {len(factory.calendars)} calendar(s)"
    )


def validate(factory_file: Annotated[Path, typer.Argument(help="Factory file (YAML)")]) -> None:
    """Check a factory file; on error print file:line field: problem and exit 2."""
    factory = load_factory(factory_file)
    out.print(f"[green]valid[/]: {escape(_factory_summary(factory))}", highlight=False, markup=True)


@factory_app.command("apply")
def factory_apply(
    factory_file: Annotated[Path, typer.Argument(help="Factory file (YAML)")], db: DbOption = None
) -> None:
    """Validate a factory file and store it as the current (versioned) factory model."""
    from microfab.commands.users import cli_actor
    from microfab.store import open_store
    from microfab.store.audit import record_change

    factory = load_factory(factory_file)
    with open_store(db) as store:
        version, created = store.apply_factory(factory, str(factory_file))
        if created:
            record_change(
                store,
                actor=cli_actor(),
                action="factory.apply",
                target=f"factory:{version}",
                before=None if version == 1 else {"version": version - 1},
                after={
                    "version": version,
                    "company": factory.company.name,
                    "source": str(factory_file),
                },
            )
    state = "stored as" if created else "unchanged, already"
    out.print(f"factory {state} version {version}: {_factory_summary(factory)}", highlight=False)


@factory_app.command("show")
def factory_show(db: DbOption = None) -> None:
    """Print the current factory model as JSON."""
    from microfab.store import open_store

    with open_store(db) as store:
        found = store.factory()
    if found is None:
        raise NoFactoryError(
            "no factory model in this store yet; run 'microfab factory apply FILE'"
        )
    version, factory = found
    print(
        json.dumps(
            {"version": version, **factory.model_dump(mode="json")}, ensure_ascii=False, indent=2
        )
    )


@factory_app.command("schema")
def factory_schema() -> None:
    """Print the JSON Schema of the factory file."""
    schema = Factory.model_json_schema()
    print(
        json.dumps(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema},
            indent=2,
            ensure_ascii=False,
        )
    )
