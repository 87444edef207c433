"""Small helpers that every layer may use (core, store, services, ui): standard library and Pillow only."""

from common.atomic import write_atomically, write_json_atomically
from common.images import exif_orientation, open_upright, upright, upright_size

__all__ = ["exif_orientation", "open_upright", "upright", "upright_size", "write_atomically", "write_json_atomically"]
