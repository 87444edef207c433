"""Bounded import reports: the first problems and skipped items are listed, the rest only counted.

A CSV of a million unknown rows used to produce a million report lines (a 133 MB answer to the browser, issue 24);
now every report lists at most `REPORT_LIMIT` items of each list and sums up the others by kind, so its size and
the memory behind it do not grow with the input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from store.errors import ImportFormatError

REPORT_LIMIT = 20  # problems (and, separately, skipped items) listed in a report; the others are counted
MAX_KINDS = 10  # kinds of unlisted items counted by name; further kinds count as "other"
MAX_TEXT = 400  # characters of one listed item (a CSV cell may hold 128 KiB)
_DIGITS = str.maketrans("0123456789", "##########")


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit` characters, marked with "…" when cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def kind_of(item: Any) -> str:
    """What an item is about, without its particulars: a skipped item's reason or a problem's message with quoted
    names and numbers left out ("box (#, #, #, #) outside the #x# image"). Cheap: it runs for every unlisted row."""
    text = getattr(item, "reason", None)
    if text is None:
        text = str(item).split(": ", 1)[-1]
    text = "…".join(text.split("'")[::2]).split(";")[0].translate(_DIGITS)  # 'name' -> …, 123 -> ###
    while "##" in text:
        text = text.replace("##", "#")
    return shorten(printable(text.strip()), 80)


class Capped(list):  # type: ignore[type-arg]  # holds problem strings or `Skipped` items
    """A list that keeps the first `limit` items appended and counts the others by kind.

    `len()`, iteration and indexing see the items kept; `total` is how many were appended; `unlisted` counts the
    others by `kind_of`. Listed text is shortened to `MAX_TEXT` characters.
    """

    def __init__(self, items: Iterable[Any] = (), *, limit: int = REPORT_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.total = 0
        self.unlisted: Counter[str] = Counter()
        self.extend(items)

    def append(self, item: Any) -> None:
        self.total += 1
        if len(self) < self.limit:
            super().append(_shortened(item))
            return
        kind = kind_of(item)
        if kind not in self.unlisted and len(self.unlisted) >= MAX_KINDS:
            kind = "other"
        self.unlisted[kind] += 1

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)

    def __iadd__(self, items: Iterable[Any]) -> Capped:  # type: ignore[override]
        self.extend(items)
        return self

    @property
    def hidden(self) -> int:
        """How many items were appended but not kept."""
        return self.total - len(self)

    def more_line(self) -> str | None:
        """"and 999,980 more: 999,980 × unknown file …" for the items not listed; None when all are."""
        if not self.hidden:
            return None
        kinds = ", ".join(f"{count:,} × {kind}" for kind, count in self.unlisted.most_common())
        return f"... and {self.hidden:,} more not listed ({kinds})"


def printable(text: str) -> str:
    """`text` as it can be shown and logged: cut to `MAX_TEXT` characters, and a file name's bytes that are not
    UTF-8 (Python keeps them as lone surrogates, which no page or terminal can encode) written as `\\udcff`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return shorten(text)


def _shortened(item: Any) -> Any:
    if isinstance(item, str):
        return printable(item)
    if hasattr(item, "item") and hasattr(item, "reason"):  # a `Skipped`: frozen, so rebuilt when it changes
        item_text, reason = printable(item.item), printable(item.reason)
        if (item_text, reason) != (item.item, item.reason):
            return type(item)(item_text, reason)
    return item


def total(items: list[Any]) -> int:
    """How many items were appended to `items` (a `Capped` list or a plain one)."""
    return getattr(items, "total", len(items))


def refusal(problems: list[str]) -> ImportFormatError:
    """The `ImportFormatError` for `problems`: every problem listed when they are few, else the first
    `REPORT_LIMIT` and a count of the others by kind."""
    error = ImportFormatError(list(problems))
    more = problems.more_line() if isinstance(problems, Capped) else None
    if more is not None:
        shown = "\n  ".join(error.problems)
        error.args = (f"{total(problems):,} problems in the input, nothing imported:\n  {shown}\n  {more}",)
    return error


__all__ = ["MAX_TEXT", "REPORT_LIMIT", "Capped", "kind_of", "printable", "refusal", "shorten", "total"]
