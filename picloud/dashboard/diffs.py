"""Line diffs of script versions, as rows a template shows like a code review does."""
import difflib
from dataclasses import dataclass

# Unchanged lines kept around each change; longer unchanged runs fold into one row.
CONTEXT_LINES = 3


@dataclass(frozen=True)
class DiffRow:
    """One row: kind is "same", "removed", "added" or "fold" (``text`` says how many)."""

    kind: str
    old_number: int | None
    new_number: int | None
    text: str


def line_diff(old, new, context=CONTEXT_LINES):
    """Return the DiffRows that turn ``old`` into ``new``."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    opcodes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            rows.extend(_unchanged(old_lines, i1, i2, j1, context, first=index == 0, last=index == len(opcodes) - 1))
            continue
        rows.extend(DiffRow("removed", i + 1, None, old_lines[i]) for i in range(i1, i2))
        rows.extend(DiffRow("added", None, j + 1, new_lines[j]) for j in range(j1, j2))
    return rows


def _unchanged(lines, start, end, new_start, context, *, first, last):
    """Return an unchanged run, folding what lies beyond ``context`` lines of a change."""
    keep_head = 0 if first else context
    keep_tail = 0 if last else context
    if end - start <= keep_head + keep_tail + 1:
        keep_head, keep_tail = end - start, 0
    rows = [DiffRow("same", start + k + 1, new_start + k + 1, lines[start + k]) for k in range(keep_head)]
    folded = end - start - keep_head - keep_tail
    if folded > 0:
        rows.append(DiffRow("fold", None, None, f"{folded} unchanged line{'' if folded == 1 else 's'}"))
    offset = end - start - keep_tail
    rows.extend(
        DiffRow("same", start + offset + k + 1, new_start + offset + k + 1, lines[start + offset + k])
        for k in range(keep_tail)
    )
    return rows


def summary(rows):
    """Return (lines added, lines removed)."""
    return sum(row.kind == "added" for row in rows), sum(row.kind == "removed" for row in rows)
