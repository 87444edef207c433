"""Messages that name no server path: a folder on the server is written as the user knows it (the zip's name, the
path they typed), in refusals and reports of the imports a browser user asks for."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.errors import ImportFormatError

Places = list[tuple[Path, str]]  # a folder on the server -> how messages name it


def relabel(text: str, places: Places) -> str:
    """`text` with each server folder of `places` (as given, absolute or resolved) written as its label."""
    forms = {}
    for path, label in places:
        for form in (str(path), os.path.abspath(path), os.path.realpath(path)):
            forms.setdefault(form, label)
    for form in sorted(forms, key=len, reverse=True):
        # whole path components only: not the tail of a longer path, nor a folder whose name goes on ("p-2")
        pattern = r"(?<![\w./~-])" + re.escape(form) + r"(?=$|[/\s'\":;,)\]])"
        text = re.sub(pattern, lambda _, label=forms[form]: label, text)
    return text


@contextmanager
def named_for_the_user(places: Places) -> Iterator[None]:
    """Refusals raised inside name the folders of `places` by their labels; an unreadable file is a ValueError."""
    try:
        yield
    except ImportFormatError as exc:
        exc.problems = [relabel(problem, places) for problem in exc.problems]
        exc.args = (relabel(str(exc), places),)
        raise
    except ValueError as exc:
        exc.args = (relabel(str(exc), places),)
        raise
    except OSError as exc:  # a file the server may not read: named as the user knows it
        where = relabel(str(exc.filename), places) if exc.filename else "a file"
        raise ValueError(f"{where} could not be read ({exc.strerror or exc}); nothing was imported") from None


__all__ = ["Places", "named_for_the_user", "relabel"]
