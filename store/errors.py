"""Errors the repository raises; messages say what happened and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NotFoundError(ValueError):
    """A project, image, box or run that does not exist."""


class ConflictError(RuntimeError):
    """A write based on a stale view: someone else changed the row since the caller loaded it.

    Nothing has been written when this is raised; reload and re-apply the edit.
    """


class ImportFormatError(ValueError):
    """A malformed input file; `problems` lists every problem found as "file:line: message"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the input, nothing imported:\n  {shown}{more}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean "x"?)' for a near miss among `known`, else ''."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return f' (did you mean "{lowered[name.lower()]}"?)'
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
