"""EXIF orientation read from the header: JPEG and PNG, turned and not, without decoding the pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from common.images import ORIENTATION_TAG, exif_orientation, open_upright, upright_size


def _save(path: Path, orientation: int | None) -> Path:
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    options = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        options["exif"] = exif
    image.save(path, **options)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_orientation_and_size_come_from_the_header(tmp_path: Path, suffix: str) -> None:
    turned = _save(tmp_path / f"turned{suffix}", 6)
    plain = _save(tmp_path / f"plain{suffix}", None)
    with Image.open(turned) as image:
        assert exif_orientation(image) == 6 and upright_size(image) == (20, 40)
        assert image.tile  # still to decode: the pixels were not read
    with Image.open(plain) as image:
        assert exif_orientation(image) == 1 and upright_size(image) == (40, 20)
        assert image.tile  # a PNG without EXIF is not decoded to look for it (gallery pages)
    with open_upright(turned) as image:
        assert image.size == (20, 40)
