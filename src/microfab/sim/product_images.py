"""Procedurally drawn product images for the simulated vision station, with their ground truth.

A sealed meal tray seen from above on a conveyor: a cream tray, the meal filling it, a printed
label at its corner. Each image is drawn from a seed alone (the same seed gives the same pixels),
good or with one defect of a known kind and place:

- ``scratch``: one to three thin lines scored across the film;
- ``spot``: one or two dark spots (burnt food, dirt) on the tray or the meal;
- ``missing_fill``: a part of the tray left empty (the filler short-filled it);
- ``misaligned_label``: the label shifted and turned away from its place.

Good images vary as a real line does: the tray's place (±6 px), the light (±10 %), the meal's
colour and texture, sensor noise. :func:`write_training_set` writes ``good/`` and one folder per
defect (what ``microfab vision train`` reads) with ``labels.csv`` (file, class, seed, box).
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFECTS = ("scratch", "spot", "missing_fill", "misaligned_label")
CLASSES = ("good", *DEFECTS)


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What was drawn: the class and, for a defect, the box around it (pixels x1, y1, x2, y2)."""

    label: str
    seed: int
    box: tuple[int, int, int, int] | None

    @property
    def defect(self) -> bool:
        return self.label != "good"


def defect_for(seed: int, defect_rate: float) -> str:
    """The class the station's product ``seed`` has, at ``defect_rate`` (the simulator's draw)."""
    rng = random.Random(seed * 7919 + 17)
    if rng.random() >= defect_rate:
        return "good"
    return rng.choice(DEFECTS)


def draw_product(
    seed: int, label: str = "good", size: tuple[int, int] = (640, 480)
) -> tuple[Image.Image, GroundTruth]:
    """One product image of class ``label`` (``good`` or one of :data:`DEFECTS`), from ``seed``."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; expected one of {', '.join(CLASSES)}")
    rng = random.Random(seed)
    width, height = size
    sx, sy = width / 640, height / 480
    light = rng.uniform(0.9, 1.1)

    belt = tuple(int(c * light) for c in (92, 96, 100))
    img = Image.new("RGB", (width, height), belt)
    draw = ImageDraw.Draw(img)
    for x in range(0, width, max(1, int(40 * sx))):  # belt slats
        draw.line([(x, 0), (x, height)], fill=tuple(int(c * 0.9) for c in belt), width=1)

    dx, dy = rng.uniform(-6, 6) * sx, rng.uniform(-6, 6) * sy
    tx1, ty1, tx2, ty2 = 120 * sx + dx, 80 * sy + dy, 520 * sx + dx, 400 * sy + dy
    tray = tuple(int(c * light) for c in (236, 228, 210))
    draw.rounded_rectangle([tx1, ty1, tx2, ty2], radius=int(24 * sx), fill=tray)
    inner = (tx1 + 18 * sx, ty1 + 18 * sy, tx2 - 18 * sx, ty2 - 18 * sy)
    base = [rng.uniform(150, 175), rng.uniform(88, 105), rng.uniform(40, 55)]
    meal = tuple(int(c * light) for c in base)
    draw.rounded_rectangle(inner, radius=int(14 * sx), fill=meal)
    for _ in range(40):  # the meal's texture: soft lighter and darker pieces
        cx = rng.uniform(inner[0] + 10, inner[2] - 10)
        cy = rng.uniform(inner[1] + 10, inner[3] - 10)
        r = rng.uniform(6, 14) * sx
        k = rng.uniform(0.92, 1.1)
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r], fill=tuple(int(min(255, c * k)) for c in meal)
        )

    box: tuple[int, int, int, int] | None = None
    if label == "missing_fill":
        frac = rng.uniform(0.3, 0.55)
        side = rng.choice(("left", "right", "top", "bottom"))
        x1, y1, x2, y2 = inner
        if side == "left":
            x2 = x1 + (x2 - x1) * frac
        elif side == "right":
            x1 = x2 - (x2 - x1) * frac
        elif side == "top":
            y2 = y1 + (y2 - y1) * frac
        else:
            y1 = y2 - (y2 - y1) * frac
        empty = tuple(int(c * light * 0.97) for c in (228, 220, 200))
        draw.rectangle([x1, y1, x2, y2], fill=empty)
        box = (int(x1), int(y1), int(x2), int(y2))

    # the label, at the tray's lower right corner
    lw, lh = 150 * sx, 80 * sy
    lx, ly = tx2 - 40 * sx - lw, ty2 - 36 * sy - lh
    angle = rng.uniform(-1.0, 1.0)
    if label == "misaligned_label":
        shift = rng.uniform(28, 55)
        direction = rng.uniform(0, 2 * math.pi)
        lx += shift * math.cos(direction) * sx
        ly += shift * math.sin(direction) * sy
        angle = rng.choice((-1, 1)) * rng.uniform(8, 20)
    sticker = _label(int(lw), int(lh), rng, light)
    turned = sticker.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    mask = Image.new("L", sticker.size, 255).rotate(angle, expand=True)
    px = int(lx + lw / 2 - turned.width / 2)
    py = int(ly + lh / 2 - turned.height / 2)
    img.paste(turned, (px, py), mask)
    if label == "misaligned_label":
        box = (px, py, px + turned.width, py + turned.height)

    if label == "scratch":
        xs, ys = [], []
        for _ in range(rng.randint(1, 3)):
            length = rng.uniform(120, 260) * sx
            theta = rng.uniform(0, math.pi)
            cx = rng.uniform(tx1 + 60 * sx, tx2 - 60 * sx)
            cy = rng.uniform(ty1 + 60 * sy, ty2 - 60 * sy)
            x1 = cx - length / 2 * math.cos(theta)
            y1 = cy - length / 2 * math.sin(theta)
            x2 = cx + length / 2 * math.cos(theta)
            y2 = cy + length / 2 * math.sin(theta)
            shade = rng.choice((40, 235))  # a dark score or a bright crease in the film
            draw.line(
                [(x1, y1), (x2, y2)],
                fill=(shade, shade, shade),
                width=max(1, round(rng.uniform(2, 4) * sx)),
            )
            xs += [x1, x2]
            ys += [y1, y2]
        box = (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))
    elif label == "spot":
        xs, ys = [], []
        for _ in range(rng.randint(1, 2)):
            r = rng.uniform(7, 15) * sx
            cx = rng.uniform(tx1 + 40 * sx, tx2 - 40 * sx)
            cy = rng.uniform(ty1 + 40 * sy, ty2 - 40 * sy)
            shade = int(rng.uniform(15, 45))
            draw.ellipse(
                [cx - r, cy - r * rng.uniform(0.7, 1.0), cx + r, cy + r],
                fill=(shade + 10, shade, shade),
            )
            xs += [cx - r, cx + r]
            ys += [cy - r, cy + r]
        box = (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))

    img = img.filter(ImageFilter.GaussianBlur(radius=0.6 * sx))  # the lens
    noise = np.random.default_rng(seed).normal(0.0, 3.0, (height, width, 3))
    pixels = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), GroundTruth(label, seed, box)


def _label(width: int, height: int, rng: random.Random, light: float) -> Image.Image:
    sticker = Image.new("RGB", (width, height), tuple(int(c * light) for c in (250, 250, 246)))
    d = ImageDraw.Draw(sticker)
    band = tuple(int(c * light) for c in (200, 30, 40))
    d.rectangle([0, 0, width, height // 4], fill=band)
    y = height // 4 + 8
    while y < height - 8:  # lines of print
        d.rectangle([8, y, 8 + rng.uniform(0.4, 0.9) * (width - 16), y + 4], fill=(40, 40, 40))
        y += 12
    return sticker


def write_training_set(
    folder: Path, *, per_class: int, seed: int = 0, size: tuple[int, int] = (640, 480)
) -> dict[str, int]:
    """``per_class`` PNG images of each class under ``folder/<class>/``, with ``labels.csv``."""
    counts: dict[str, int] = {}
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "class", "seed", "x1", "y1", "x2", "y2"])
        for k, name in enumerate(CLASSES):
            target = folder / name
            target.mkdir(exist_ok=True)
            for i in range(per_class):
                s = seed + k * 100_000 + i
                img, truth = draw_product(s, name, size)
                path = target / f"{name}-{s:07d}.png"
                img.save(path, optimize=False, compress_level=1)
                writer.writerow([f"{name}/{path.name}", name, s, *(truth.box or ("", "", "", ""))])
            counts[name] = per_class
    return counts
