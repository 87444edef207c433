"""Small standard-library helpers that every layer may use (core, store, services, ui): nothing else here."""

from common.atomic import write_atomically, write_json_atomically

__all__ = ["write_atomically", "write_json_atomically"]
