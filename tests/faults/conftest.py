"""Fault injection: every module here is marked ``faults`` and reports what it measured.

``figures.add(name, measured, goal, ok)`` keeps one line per measurement; they are
printed together at the end of the run, next to their goals, pass or fail.
"""
import pytest

_FIGURES = []


class Figures:
    """Measurements of one run, printed in the terminal summary."""

    def add(self, name, measured, goal, ok):
        _FIGURES.append((name, measured, goal, "ok" if ok else "MISSED"))
        return ok


@pytest.fixture(scope="session")
def figures():
    return Figures()


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("fault injection: measured against goals")
    width = max(len(name) for name, *_ in _FIGURES)
    for name, measured, goal, verdict in _FIGURES:
        terminalreporter.write_line(f"{name:<{width}}  {measured:>12}  goal {goal:<14} {verdict}")
