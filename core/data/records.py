"""Image records and the one image loader every part of the engine uses.

An :class:`ImageRecord` is what the data layer needs to know about one image: where it is, its
labels, its boxes in *original* pixels and its worst-group analysis group. ``services`` builds
records from database rows; the synthetic demo builds them from its manifest.

Images are decoded with Pillow through :func:`common.images.open_upright` (EXIF orientation applied, so
boxes drawn on the image as a browser, Label Studio or CVAT shows it stay right), converted to RGB and
resized to a square with a plain (non aspect-preserving) bilinear resize. Boxes are scaled by ``S / W``
horizontally and ``S / H`` vertically to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.images import open_upright

Box = tuple[float, float, float, float]

__all__ = ["Box", "ImageLoadError", "ImageRecord", "load_rgb", "resize_rgb", "scale_boxes"]


class ImageLoadError(RuntimeError):
    """An image file is missing, unreadable or not a decodable image.

    Attributes:
        path: the file that failed.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"cannot load image {self.path}: {reason}. Check that the file exists and is a valid "
            "PNG/JPEG/BMP/WebP image; re-import it or remove it from the project."
        )

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # Keeps the exception picklable across DataLoader worker processes.
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class ImageRecord:
    """One image of a data set, as the data layer sees it.

    Attributes:
        path: image file.
        labels: class indices present in the image (one for single-label data; may be empty).
        boxes: ``(x0, y0, x1, y1)`` per box in original pixels, end-exclusive (``x1 > x0``).
        box_labels: class index per box, same length as ``boxes``.
        group: worst-group analysis group index, ``None`` when the image has none.
        key: caller's identifier (e.g. the database id); returned with every sample.
        width, height: original size if known (informational; the decoded size is authoritative).
    """

    path: Path
    labels: tuple[int, ...]
    boxes: tuple[Box, ...] = ()
    box_labels: tuple[int, ...] = ()
    group: int | None = None
    key: int = 0
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if len(self.boxes) != len(self.box_labels):
            raise ValueError(
                f"record {self.key} ({self.path}): {len(self.boxes)} boxes but {len(self.box_labels)} box labels; "
                "give one class index per box"
            )
        for box in self.boxes:
            if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(
                    f"record {self.key} ({self.path}): box {box} is not (x0, y0, x1, y1) with x1 > x0 and y1 > y0"
                )


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB.

    Returns:
        ``(H, W, 3)`` uint8 array, EXIF orientation applied.

    Raises:
        ImageLoadError: the file is missing, unreadable, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        with open_upright(path) as image:  # EXIF orientation applied: the frame boxes are drawn in
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not a recognised image format (corrupt or not an image)") from None
    except Image.DecompressionBombError as error:
        raise ImageLoadError(path, f"too large to decode safely ({error}); reduce it, e.g. to 4096 pixels a side, "
                                   "and import it again") from None
    except (OSError, ValueError, SyntaxError) as error:  # Pillow raises these for damaged files
        raise ImageLoadError(path, f"decoding failed ({error})") from error


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """Plain bilinear resize (antialiased when shrinking) to a ``size × size`` square.

    Args:
        image: ``(H, W, 3)`` uint8.

    Returns:
        ``(size, size, 3)`` uint8; the input itself when it already has that size.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] == size and image.shape[1] == size:
        return image
    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.array(resized, dtype=np.uint8)  # a writable copy (np.asarray of a PIL image is read-only)


def scale_boxes(boxes: Sequence[Box], width: int, height: int, size: int) -> np.ndarray:
    """Scale boxes from an original ``width × height`` image to a ``size × size`` resize.

    Returns:
        ``(K, 4)`` float32 ``x0 y0 x1 y1`` in resized pixels, clipped to ``[0, size]``.
    """
    array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    factors = np.array([size / width, size / height, size / width, size / height], dtype=np.float32)
    return np.clip(array * factors, 0.0, float(size))
