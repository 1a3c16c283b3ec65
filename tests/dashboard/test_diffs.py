"""Line diffs of script versions (pure)."""
from picloud.dashboard.diffs import DiffRow, line_diff, summary


def test_a_changed_line_reads_as_removed_then_added_with_numbers():
    rows = line_diff("a\nb\nc\n", "a\nB\nc\n")
    assert rows == [
        DiffRow("same", 1, 1, "a"),
        DiffRow("removed", 2, None, "b"),
        DiffRow("added", None, 2, "B"),
        DiffRow("same", 3, 3, "c"),
    ]
    assert summary(rows) == (1, 1)


def test_long_unchanged_runs_fold_beyond_three_lines_of_context():
    old = "\n".join(f"line {n}" for n in range(1, 21))
    new = old.replace("line 10", "line ten")
    rows = line_diff(old, new)
    kinds = [row.kind for row in rows]
    assert kinds == ["fold", "same", "same", "same", "removed", "added", "same", "same", "same", "fold"]
    assert rows[0].text == "6 unchanged lines" and rows[-1].text == "7 unchanged lines"
    assert rows[1].old_number == 7 and rows[6].new_number == 11


def test_identical_sources_and_empty_ones():
    assert summary(line_diff("x\ny", "x\ny")) == (0, 0)
    assert line_diff("", "new") == [DiffRow("added", None, 1, "new")]
    assert line_diff("old", "") == [DiffRow("removed", 1, None, "old")]

