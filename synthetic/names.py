"""Names and numbers of the people and companies on the statements: holders, counterparties, company
pools, card numbers. Drawn from the pools in `synthetic.catalogue`; counterparties never take an account
holder's name, so no transfer is an own transfer by accident."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synthetic.catalogue import CITIES, GIVEN, PERSON_BINS, SURNAMES, WORDS
from synthetic.draws import digits
from synthetic.events import Strings


def unique(used: set[str], make: Callable[[], str]) -> str:
    """The first value `make` draws that is not in `used` (then added to it)."""
    while True:
        value = make()
        if value not in used:
            used.add(value)
            return value


def person(rng: np.random.Generator, surname: str | None = None) -> str:
    """A Chinese personal name: a surname (given or drawn) and one or two given characters."""
    sur = surname or SURNAMES[int(rng.integers(0, len(SURNAMES)))]
    given = GIVEN[int(rng.integers(0, len(GIVEN)))]
    if rng.random() < 0.7:
        given += GIVEN[int(rng.integers(0, len(GIVEN)))]
    return sur + given


def other_person(rng: np.random.Generator, holders: set[str], surname: str | None = None) -> str:
    """A counterparty person whose name is not an account holder's (no accidental own transfers)."""
    while True:
        name = person(rng, surname)
        if name not in holders:
            return name


def company(rng: np.random.Generator, kinds: tuple[str, ...]) -> str:
    """A company name: city, a word, one of `kinds`, 有限公司."""
    city = CITIES[int(rng.integers(0, len(CITIES)))]
    word = WORDS[int(rng.integers(0, len(WORDS)))]
    return f"{city}{word}{kinds[int(rng.integers(0, len(kinds)))]}有限公司"


def company_pool(
    rng: np.random.Generator, size: int, kinds: tuple[str, ...], holders: set[str], strings: Strings
) -> np.ndarray:
    """(name code, account code) pairs of companies, shape (size, 2): distinct while the name parts
    allow (a budget of draws, since large datasets ask for more names than the parts can make), then
    the pool repeats — at that scale companies are shared by many customers, as in life."""
    names: dict[str, str] = {}
    draws = 0
    while len(names) < size and draws < 20 * size:
        draws += 1
        name = company(rng, kinds)
        if name not in names and name not in holders:
            names[name] = digits(rng, str(int(rng.integers(1, 10))), int(rng.choice([12, 15, 19])))
    pairs = np.array([[strings.code(k), strings.code(v)] for k, v in names.items()], np.int32)
    return np.resize(pairs, (size, 2))


def person_card(rng: np.random.Generator) -> str:
    """A personal bank card number (16 or 19 digits, a common BIN)."""
    return digits(rng, PERSON_BINS[int(rng.integers(0, len(PERSON_BINS)))], 19 if rng.random() < 0.6 else 16)
