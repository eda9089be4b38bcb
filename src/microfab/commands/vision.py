"""``microfab vision run|train|images|watch``: AI visual inspection (AI 品檢) with ONNX models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from microfab.commands.common import DbOption, err, out

vision_app = typer.Typer(
    help="AI visual inspection AI 品檢: run a plant's ONNX model, train a simple one.",
    no_args_is_help=True,
)


@vision_app.command("run")
def vision_run(
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, BMP, TIFF)")],
    card: Annotated[Path, typer.Option("--card", help="The model card (YAML)")],
    model: Annotated[
        Path | None,
        typer.Option("--model", help="The ONNX file \\[default: the card's model]"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image, one per line")
    ] = False,
) -> None:
    """Judge images with a model and its card, without a store: try a vendor's model first.

    An image that cannot be read is reported with the reason and the others are still judged;
    the exit code is then 1.
    """
    from microfab.vision.images import ImageUnreadable
    from microfab.vision.runtime import InspectionModel

    inspector = InspectionModel.from_card(card, model)
    table = Table("image", "result", "classes", "ms")
    unreadable = 0
    for path in images:
        try:
            verdict = inspector.inspect(path)
        except ImageUnreadable as exc:
            unreadable += 1
            if as_json:
                print(json.dumps({"image": str(path), "error": exc.reason}, ensure_ascii=False))
            else:
                table.add_row(str(path), Text("unreadable", style="red"), exc.reason, "")
            continue
        doc = {
            "image": str(path),
            **verdict.to_json(),
            "model": {"id": inspector.info.id, "version": inspector.info.version},
            "latency_ms": round(verdict.latency_ms, 2),
        }
        if as_json:
            print(json.dumps(doc, ensure_ascii=False))
        else:
            classes = ", ".join(f"{n} {s:.2f}" for n, s in verdict.classes[:3])
            colour = "red" if verdict.defect else "green"
            table.add_row(
                str(path), Text(verdict.result, style=colour), classes, f"{verdict.latency_ms:.1f}"
            )
    if not as_json:
        out.print(table)
    if unreadable:
        err.print(f"{unreadable} image(s) could not be read", highlight=False)
        raise typer.Exit(1)


@vision_app.command("train")
def vision_train(
    folder: Annotated[
        Path, typer.Argument(help="Folder with good/ and one folder per defect class")
    ],
    output: Annotated[
        Path,
        typer.Option("--out", "-o", help="Where to write MODEL.onnx and MODEL.yaml"),
    ] = Path("inspection-model"),
    model_id: Annotated[
        str | None, typer.Option("--id", help="Model id \\[default: the --out name]")
    ] = None,
    version: Annotated[str, typer.Option(help="Model version written to the card")] = "1",
    folds: Annotated[int, typer.Option(help="Cross-validation folds", min=2, max=20)] = 5,
    anomaly: Annotated[
        bool,
        typer.Option("--anomaly", help="Train on good/ only: an anomaly model (no defect folders)"),
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the classifier")] = 0,
    trees: Annotated[
        int, typer.Option(help="Trees of the classifier (more: steadier, slower)", min=10, max=2000)
    ] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Train a classical inspection model (image features + scikit-learn) on your own images,
    export it to ONNX with its card and report cross-validated precision/recall per class."""
    from microfab.vision.train import train_anomaly, train_classifier

    if anomaly:
        report = train_anomaly(
            folder, output, model_id=model_id, version=version, folds=folds, seed=seed
        )
    else:
        report = train_classifier(
            folder, output, model_id=model_id, version=version, folds=folds, seed=seed, trees=trees
        )
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    out.print(
        f"trained {report.card.task} model {report.card.model_id()} v{report.card.version} "
        f"on {report.images} images ({report.method})",
        highlight=False,
    )
    table = Table("class", "images", "precision", "recall")
    for name, figures in report.per_class.items():
        table.add_row(
            name, str(figures.support), f"{figures.precision:.3f}", f"{figures.recall:.3f}"
        )
    out.print(table)
    for line in report.notes:
        out.print(line, highlight=False)
    out.print(f"model: {report.model_path}\ncard:  {report.card_path}", highlight=False)


@vision_app.command("images")
def vision_images(
    folder: Annotated[Path, typer.Argument(help="Folder to write good/ and <defect>/ into")],
    per_class: Annotated[int, typer.Option("--per-class", help="Images per class", min=1)] = 40,
    seed: Annotated[int, typer.Option(help="First seed (image i uses seed + i)")] = 0,
    width: Annotated[int, typer.Option(help="Image width in pixels", min=64)] = 640,
    height: Annotated[int, typer.Option(help="Image height in pixels", min=48)] = 480,
) -> None:
    """Draw simulated product images (scratches, spots, missing fill, misaligned labels) with
    their ground truth in labels.csv: a training set for `vision train` and the demo."""
    from microfab.sim.product_images import write_training_set

    counts = write_training_set(folder, per_class=per_class, seed=seed, size=(width, height))
    for name, n in counts.items():
        out.print(f"{name}: {n} images", highlight=False)
    out.print(f"ground truth: {folder / 'labels.csv'}", highlight=False)


@vision_app.command("watch")
def vision_watch(
    folder: Annotated[Path, typer.Argument(help="The folder the camera writes images to")],
    card: Annotated[Path, typer.Option("--card", help="The model card (YAML)")],
    machine: Annotated[
        str, typer.Option("--machine", help="Inspection machine path site/area/line/cell/machine")
    ],
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Where copies of judged images and thumbnails are kept \\[default: FOLDER/images]",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Judge what is there now, then stop")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the folder")] = 1.0,
    db: DbOption = None,
) -> None:
    """Watch a camera folder: each image → one `inspection` event; judged images move to
    processed/, unreadable ones to rejected/ with the reason beside them."""
    import time

    from microfab.store import open_store
    from microfab.vision.runtime import InspectionModel
    from microfab.vision.station import FolderStation, StoreSink, register

    inspector = InspectionModel.from_card(card)
    with open_store(db) as store:
        register(store, inspector)
        station = FolderStation(folder, inspector, machine, StoreSink(store), keep=keep)
        while True:
            done = station.poll()
            for line in done:
                out.print(line, highlight=False)
            if once:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return


@vision_app.command("sim")
def vision_sim(
    card: Annotated[Path, typer.Option("--card", help="The model card (YAML)")],
    machine: Annotated[
        str, typer.Option("--machine", help="Inspection machine path site/area/line/cell/machine")
    ],
    count: Annotated[int, typer.Option(help="Products to draw and judge", min=1)] = 50,
    seed: Annotated[int, typer.Option(help="First unit's seed")] = 1,
    defect_rate: Annotated[
        float,
        typer.Option("--defect-rate", help="Share of products drawn with a defect", min=0, max=1),
    ] = 0.2,
    order: Annotated[str | None, typer.Option(help="Work order the units belong to")] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Keep the judged images and thumbnails here"),
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON")] = False,
) -> None:
    """The simulated vision station: draw products with known defects, judge each with the
    model into one `inspection` event in the store, and score the verdicts against the drawing."""
    from microfab.store import open_store
    from microfab.vision.runtime import InspectionModel
    from microfab.vision.simulated import run_simulated_station
    from microfab.vision.station import InspectionStation, StoreSink, register

    inspector = InspectionModel.from_card(card)
    with open_store(db) as store:
        register(store, inspector)
        station = InspectionStation(inspector, machine, StoreSink(store), images)
        run = run_simulated_station(
            station, count=count, seed=seed, defect_rate=defect_rate, order=order
        )
    doc = run.to_json()
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    table = Table("class", "drawn", "judged", "precision", "recall")
    for name, c in doc["classes"].items():
        table.add_row(
            name,
            str(c["drawn"]),
            str(c["judged"]),
            "—" if c["precision"] is None else f"{c['precision']:.3f}",
            "—" if c["recall"] is None else f"{c['recall']:.3f}",
        )
    out.print(
        f"{doc['units']} units judged on {machine} by {inspector.info.id} v{inspector.info.version}",
        highlight=False,
    )
    out.print(table)
    out.print(
        f"defects missed: {doc['defects_missed']}, false alarms: {doc['false_alarms']}",
        highlight=False,
    )


@vision_app.command("prune")
def vision_prune(
    images: Annotated[Path, typer.Argument(help="The stations' image folder (kept images)")],
    days: Annotated[int, typer.Option(help="Keep this many days of images", min=0)] = 30,
) -> None:
    """Retention: delete kept inspection images and thumbnails older than --days."""
    from microfab.vision.station import prune_images

    removed = prune_images(images, days)
    out.print(f"removed {removed} file(s) older than {days} days from {images}", highlight=False)


@vision_app.command("listen")
def vision_listen(
    card: Annotated[Path, typer.Option("--card", help="The model card (YAML)")],
    machine: Annotated[
        str, typer.Option("--machine", help="Inspection machine path site/area/line/cell/machine")
    ],
    root: Annotated[
        Path, typer.Option("--root", help="The camera's shared folder the messages' paths are in")
    ],
    topic: Annotated[
        str, typer.Option(help="MQTT topic of the image messages")
    ] = "microfab/v1/vision/images",
    broker: Annotated[
        str | None, typer.Option(help="MQTT broker URL \\[default: $MICROFAB_BROKER]")
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="Keep judged images and thumbnails here")
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="Stop after this many messages", show_default=False)
    ] = None,
    db: DbOption = None,
) -> None:
    """Judge the images MQTT messages name (`{"image": PATH, "order": …, "unit": …}`): each →
    one `inspection` event; a message naming no readable image → a dead letter with the reason."""
    import datetime as dt
    import queue

    from microfab.connect.mqtt_client import connect_blocking, new_client, parse_broker_url
    from microfab.model.dead_letter import DeadLetter, payload_text
    from microfab.store import open_store
    from microfab.vision.runtime import InspectionModel
    from microfab.vision.station import InspectionStation, StoreSink, judge_reference, register

    inspector = InspectionModel.from_card(card)
    settings = parse_broker_url(broker)
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    with open_store(db) as store:
        register(store, inspector)
        station = InspectionStation(inspector, machine, StoreSink(store), images)
        client = new_client(settings, f"microfab-vision-{machine.rsplit('/', 1)[-1]}", clean=True)
        client.on_message = lambda _c, _u, msg: inbox.put((msg.topic, bytes(msg.payload)))
        client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
        connect_blocking(client, settings)
        client.loop_start()
        seen = 0
        try:
            while count is None or seen < count:
                try:
                    got, payload = inbox.get(timeout=1.0)
                except queue.Empty:
                    continue
                seen += 1
                judged = judge_reference(station, payload, root)
                if judged.event is None:
                    store.append_dead_letters(
                        [
                            DeadLetter(
                                "vision",
                                got,
                                payload_text(payload),
                                f"image {judged.source}: {judged.reason}",
                                dt.datetime.now(dt.UTC),
                            )
                        ]
                    )
                out.print(judged.line(), highlight=False)
        except KeyboardInterrupt:
            pass
        finally:
            client.loop_stop()
            client.disconnect()
