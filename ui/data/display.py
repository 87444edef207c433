"""Images as the box editor shows them: small images upscaled (nearest neighbour), boxes scaled both ways.

The editor never upscales, so a 64×64 image would be drawn 64 pixels wide. The editor is handed an
enlarged PNG instead, cached on disk, and every box coordinate is multiplied by the scale on the way
in and divided by it on the way out: the database always holds original-pixel coordinates. The scale
is a power of two, so `x * scale / scale == x` exactly in floating point.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

log = logging.getLogger(__name__)

DISPLAY_MIN_SIDE = 512  # the longest side the editor should get, in pixels
COORD_KEYS = ("xmin", "ymin", "xmax", "ymax")


def display_scale(width: int, height: int, min_side: int = DISPLAY_MIN_SIDE) -> int:
    """The smallest power of two `s` with `max(width, height) * s >= min_side` (1 for large images)."""
    longest = max(int(width or 0), int(height or 0), 1)
    scale = 1
    while longest * scale < min_side:
        scale *= 2
    return scale


def display_image(source: Path, cache_dir: Path, key: str, scale: int) -> Path:
    """`source` enlarged `scale` times (nearest neighbour) as a PNG under `cache_dir`; `source` itself at scale 1.

    `key` names the cached file (e.g. image id and content hash), so a changed image gets a new file.
    Raises FileNotFoundError for a missing file and ValueError for one that is not an image.
    """
    if scale == 1:
        return source
    target = cache_dir / f"{key}-x{scale}.png"
    if target.exists():
        return target
    try:
        with PILImage.open(source) as opened:
            opened.load()
            image = opened if opened.mode in ("RGB", "RGBA", "L") else opened.convert("RGB")
            big = image.resize((image.width * scale, image.height * scale), PILImage.Resampling.NEAREST)
    except UnidentifiedImageError as exc:
        raise ValueError(f"{source} is not an image file; re-import it or remove it from the project") from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    big.save(temporary, format="PNG")
    os.replace(temporary, target)  # atomic: two users opening the same image never see half a file
    log.debug("display copy of %s at x%d: %s", source, scale, target)
    return target


def scale_box(box: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of an editor box (`xmin`, `ymin`, `xmax`, `ymax`, ...) with its coordinates times `factor`."""
    return {**box, **{k: float(box[k]) * factor for k in COORD_KEYS if k in box}}
