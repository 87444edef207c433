"""Images as a viewer shows them: the one place EXIF orientation is applied.

Phone cameras store pixels in sensor order and an EXIF *Orientation* tag (values 1–8) that tells a viewer how
to turn them. Browsers, Label Studio and CVAT apply it, so boxes drawn or exported there are in the turned
(upright) frame. Every part of the app that opens an image — import (stored width/height), training data,
explanations, display copies and thumbnails — goes through this module, so boxes land on the object
everywhere. Pillow only; importable from every layer (core, store, services, ui).
"""

from __future__ import annotations

import os

from PIL import Image, ImageOps

__all__ = ["ORIENTATION_TAG", "exif_orientation", "open_upright", "upright", "upright_size"]

ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # orientations with a 90° turn: width and height trade places


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1–8) of an opened image, 1 when it has none or an invalid one (header only).

    A PNG's EXIF counts when its eXIf chunk comes before the pixel data (where the PNG specification puts it, and
    where Pillow reads it on open); one after the pixel data is ignored, everywhere alike, because finding it
    means decoding the whole image (Pillow's `getexif` does), which made every gallery page decode its 48 tiles.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # a damaged EXIF block: show the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_size(image: Image.Image) -> tuple[int, int]:
    """`(width, height)` as a viewer shows the image, read from the header without decoding the pixels."""
    width, height = image.size
    return (height, width) if exif_orientation(image) in _SWAPS_SIDES else (width, height)


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (the image itself when it needs no turn).

    Decodes the pixels. The result carries no orientation tag, so applying it twice is harmless.
    """
    if exif_orientation(image) == 1:
        return image
    turned = ImageOps.exif_transpose(image)
    return image if turned is None else turned


def open_upright(path: str | os.PathLike[str]) -> Image.Image:
    """Open and decode an image file, turned as a viewer shows it.

    Raises what `PIL.Image.open` and decoding raise (FileNotFoundError, UnidentifiedImageError,
    DecompressionBombError, OSError for truncated files); callers turn those into their own errors.
    """
    with Image.open(path) as opened:
        opened.load()  # decode now: truncated files otherwise fail lazily, later
        return upright(opened)
