"""A graded result shared by the CRS and ICANS scales (CLINICAL.md, ASTCT, Lee 2019).

Unknown inputs are handled the same way in both scales: each component (a domain of the
scale) gives the set of grades it could have, given what is known. The grade is decided
only when every combination of possible component values gives the same grade; otherwise
`grade` is None and `at_least` is the lowest grade still possible (None when that is 0,
because "at least 0" says nothing). A decided grade has `at_least == grade`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product


@dataclass(frozen=True, slots=True)
class Grade:
    grade: int | None
    reasons: tuple[str, ...]
    at_least: int | None


@dataclass(frozen=True, slots=True)
class Component:
    """One domain of a scale: the grades it could have, and why."""

    possible: frozenset[int]
    reasons: tuple[str, ...] = ()

    @staticmethod
    def known(value: int, *reasons: str) -> Component:
        return Component(frozenset((value,)), reasons)

    @staticmethod
    def between(values: Iterable[int], *reasons: str) -> Component:
        return Component(frozenset(values), reasons)


def combine(components: Iterable[Component], floor: int = 0) -> frozenset[int]:
    """Every grade the components could give together: the most severe one sets it."""
    sets = [c.possible for c in components]
    return frozenset(max((floor, *combo)) for combo in product(*sets))


def decide(possible: Iterable[int], reasons: Iterable[str]) -> Grade:
    """A decided grade if only one is possible, else None with the lowest as `at_least`."""
    grades = frozenset(possible)
    if not grades:
        raise ValueError("no possible grade")
    if len(grades) == 1:
        (only,) = grades
        return Grade(only, tuple(reasons), only)
    lowest = min(grades)
    return Grade(None, tuple(reasons), lowest if lowest > 0 else None)


def fmt(x: float) -> str:
    """A reading for a reason text: 3 -> "3", 3.5 -> "3.5", 63.333 -> "63.33"."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_temp(t: float) -> str:
    """A temperature with at least one decimal: 38 -> "38.0", 37.95 -> "37.95"."""
    return f"{t:.1f}" if round(t, 1) == t else fmt(t)
