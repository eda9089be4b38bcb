"""Images in: read a file or bytes (unreadable or truncated → one reason), and turn it into the
model's input tensor as its card says (size, colour order, layout, scale, mean/std)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from microfab.vision.card import InputSpec

MAX_PIXELS = 50_000_000
"""Largest image accepted (about 8K × 6K): a bigger one is refused, not decoded."""


class ImageUnreadable(Exception):
    """An image that cannot be decoded; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_image(source: Path | bytes) -> Image.Image:
    """Decode a whole image (a file path or its bytes) as RGB; :class:`ImageUnreadable` when it
    cannot be (not an image, truncated, empty, too large, missing)."""
    try:
        data = source if isinstance(source, bytes) else source.read_bytes()
    except FileNotFoundError:
        raise ImageUnreadable("no such file") from None
    except IsADirectoryError:
        raise ImageUnreadable("it is a folder, not an image") from None
    except OSError as exc:
        raise ImageUnreadable(exc.strerror or str(exc)) from None
    if not data:
        raise ImageUnreadable("the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageUnreadable(
                    f"the image is {img.width}×{img.height}, more than {MAX_PIXELS:,} pixels"
                )
            img.load()
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise ImageUnreadable("not an image this station can read (PNG, JPEG, BMP, TIFF)") from None
    except Image.DecompressionBombError:
        raise ImageUnreadable("the image is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as exc:
        text = str(exc)
        if "truncated" in text.lower() or "broken data stream" in text:
            raise ImageUnreadable("the image is truncated (the file ends early)") from None
        raise ImageUnreadable(f"the image cannot be decoded: {text}") from None


def to_tensor(image: Image.Image, spec: InputSpec) -> NDArray[np.float32] | NDArray[np.uint8]:
    """The batch of one the model takes: resized to ``spec.size`` ([height, width]), colours in
    the card's order, ``(pixel × scale − mean) / std``, NCHW or NHWC."""
    height, width = spec.size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    if spec.colour == "GRAY":
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)[:, :, None]
    else:
        pixels = np.asarray(image, dtype=np.uint8)
        if spec.colour == "BGR":
            pixels = pixels[:, :, ::-1]
    if spec.dtype == "uint8":
        arr8 = pixels[None]
        return np.ascontiguousarray(arr8.transpose(0, 3, 1, 2) if spec.layout == "NCHW" else arr8)
    arr = pixels.astype(np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    if np.any(mean != 0) or np.any(std != 1):
        arr = (arr - mean) / std
    arr = arr[None]
    if spec.layout == "NCHW":
        arr = arr.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(arr, dtype=np.float32)
