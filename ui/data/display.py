"""Images as the browser is shown them: small ones upscaled, very large ones reduced, boxes scaled both ways.

The editor never upscales, so a 64×64 image would be drawn 64 pixels wide; and a 10,000×10,000 photo
sent as is costs the browser hundreds of megabytes. The editor is handed a display copy instead,
cached on disk (enlarged with nearest neighbour, or reduced with a box filter), and every box
coordinate is multiplied by the scale on the way in and divided by it on the way out: the database
always holds original-pixel coordinates. The scale is a power of two (…, 1/4, 1/2, 1, 2, 4, …), so
`x * scale / scale == x` exactly in floating point. The gallery gets reduced thumbnails of large images.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from common.images import exif_orientation, open_upright
from services.explanations import MAP_MAX_SIDE, map_scale

log = logging.getLogger(__name__)

DISPLAY_MIN_SIDE = 512  # the longest side the editor should get, in pixels
DISPLAY_MAX_SIDE = MAP_MAX_SIDE  # ... and at most this: the size explanations of huge images are drawn at
THUMBNAIL_MAX_SIDE = 512  # gallery tiles of larger images are reduced copies
COORD_KEYS = ("xmin", "ymin", "xmax", "ymax")


def display_scale(width: int, height: int, min_side: int = DISPLAY_MIN_SIDE, max_side: int = DISPLAY_MAX_SIDE
                  ) -> float:
    """The power of two `s` the editor shows an image at: the smallest with `longest * s >= min_side` for small
    images, the largest with `longest * s <= max_side` for very large ones, else 1."""
    longest = max(int(width or 0), int(height or 0), 1)
    if longest > max_side:
        return map_scale(width, height, max_side)
    scale = 1
    while longest * scale < min_side:
        scale *= 2
    return scale


def _open_rgb(source: Path) -> PILImage.Image:
    try:
        opened = open_upright(source)  # EXIF orientation applied, as boxes were drawn
    except (UnidentifiedImageError, PILImage.DecompressionBombError, OSError, SyntaxError) as exc:
        raise ValueError(f"{source} cannot be shown ({type(exc).__name__}: {exc}); re-import it or remove it "
                         "from the project") from exc
    return opened if opened.mode in ("RGB", "RGBA", "L") else opened.convert("RGB")


def _is_turned(source: Path) -> bool:
    """Whether the file carries an EXIF turn (a phone photo): it is then shown through an upright copy, so the
    editor's canvas and the stored boxes share one frame whatever the browser does with EXIF."""
    try:
        with PILImage.open(source) as image:  # header only
            return exif_orientation(image) != 1
    except (UnidentifiedImageError, PILImage.DecompressionBombError, OSError, SyntaxError):
        return False


def _write_atomically(image: PILImage.Image, target: Path, **options: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    image.save(temporary, **options)
    os.replace(temporary, target)  # atomic: two users opening the same image never see half a file


def display_image(source: Path, cache_dir: Path, key: str, scale: float) -> Path:
    """`source` at `scale` (a power of two) as a PNG under `cache_dir`; `source` itself at scale 1.

    Enlarged with nearest neighbour, reduced with a box filter to ``floor(size * scale)`` pixels, so a box drawn
    to the copy's edge never leaves the original image. `key` names the cached file (e.g. image id and content
    hash), so a changed image gets a new file. Raises FileNotFoundError for a missing file and ValueError for one
    that is not an image.
    """
    if scale == 1 and not _is_turned(source):
        return source
    name = f"x{int(scale)}" if scale >= 1 else f"d{round(1 / scale)}"
    target = cache_dir / f"{key}-{name}.png"
    if target.exists():
        return target
    if not source.is_file():
        raise FileNotFoundError(source)
    with _open_rgb(source) as image:
        if scale > 1:
            shown = image.resize((int(image.width * scale), int(image.height * scale)), PILImage.Resampling.NEAREST)
        else:
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            shown = image.resize(size, PILImage.Resampling.BOX, reducing_gap=2.0)
    _write_atomically(shown, target, format="PNG", compress_level=1)
    log.debug("display copy of %s at x%g: %s", source, scale, target)
    return target


def thumbnail(source: Path, cache_dir: Path, key: str, width: int, height: int,
              max_side: int = THUMBNAIL_MAX_SIDE) -> Path:
    """A gallery tile: `source` itself when its longest side is at most `max_side`, else a cached reduced JPEG.

    An unreadable or missing source is returned as is (the gallery shows a broken tile, the page still loads).
    """
    if max(int(width or 0), int(height or 0)) <= max_side and not _is_turned(source):
        return source
    target = cache_dir / f"{key}-t{max_side}.jpg"
    if target.exists():
        return target
    try:
        with _open_rgb(source) as image:
            image.thumbnail((max_side, max_side), PILImage.Resampling.BOX, reducing_gap=2.0)
            _write_atomically(image.convert("RGB"), target, format="JPEG", quality=85)
    except (ValueError, OSError) as exc:
        log.warning("no thumbnail for %s: %s", source, exc)
        return source
    return target


def scale_box(box: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of an editor box (`xmin`, `ymin`, `xmax`, `ymax`, ...) with its coordinates times `factor`."""
    return {**box, **{k: float(box[k]) * factor for k in COORD_KEYS if k in box}}
