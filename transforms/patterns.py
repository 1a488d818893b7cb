"""Regular-expression helpers shared by the rules' text patterns.

`ascii_word_boundaries`: every `\\b` / `\\B` of a pattern made an ASCII one (`(?-u:\\b)`). A Unicode word
boundary stops the Rust regex engine's fast automaton on any non-ASCII text (1M names: 2.7 s against 0.1 s for
one pattern, 17 s against 0.05 s for the lender registry's); the ASCII one is as good here, and counts a Chinese
character next to a Latin word as a boundary ("腾讯Ltd" names a company). Write a pattern with plain `\\b` and
pass it through this function."""

from __future__ import annotations

import re

_WORD_BOUNDARY_RE = re.compile(r"(?<!\\)\\([bB])")


def ascii_word_boundaries(pattern: str) -> str:
    """`pattern` with each unescaped `\\b` / `\\B` replaced by its ASCII form `(?-u:\\b)` / `(?-u:\\B)`."""
    return _WORD_BOUNDARY_RE.sub(r"(?-u:\\\1)", pattern)
