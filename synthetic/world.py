"""The sample's world, drawn once per seed before any row: the calendar, customers and their accounts,
which behaviour is planted on which account, every account's habits and counterparties, and the
cross-account cycles (planned here because their legs fall on accounts of different parts).

The parts (`synthetic.statement`) read the world and add to it only the labels of what they plant.
"""

from __future__ import annotations

from datetime import date
from functools import partial

import numpy as np
import polars as pl

from synthetic.catalogue import (
    BANKS,
    BEHAVIOURS,
    CITIES,
    CURRENCIES,
    EMPLOYER_KINDS,
    HUABEI,
    JIEBEI,
    LENDER_BEHAVIOURS,
    LENDERS,
    NEW_BEHAVIOURS,
    POWER,
    RATE_TO_CNY,
    SUPPLIER_KINDS,
    TRADE_KINDS,
)
from synthetic.draws import DAY, HOUR, digits, fixed_account, round_to, tod, yuan
from synthetic.events import Events, Strings
from synthetic.names import company, company_pool, other_person, person, person_card, unique

# Share of personal accounts per behaviour, pairs of behaviours that may share an account, businesses
# and customers with two accounts.
_BEHAVIOUR_SHARE = 0.04
_NEW_BEHAVIOUR_SHARE = 0.03
_INCOME_STOPPED_SHARE = 0.02
_INCOME_STOPPED_MONTHS = 3
_GATHER_SCATTER_SHARE = 0.02
_WINDOW_DRESSING_SHARE = 0.02
_MONTH_END_PAY_SHARE = 0.15
# Ordinary variety (drawn from the world's second generator, so the older draws stay as they were): low pay,
# a second currency, and how far an overdrawn account dips below zero.
_LOW_INCOME_SHARE = 0.08
_SECOND_CURRENCY_SHARE = 0.12
_PAIR_SHARE = 0.10
_BUSINESS_SHARE = 0.03
_TWO_ACCOUNT_SHARE = 0.10
_COMPATIBLE_PAIRS = (
    ("multi_lender", "overdue"),
    ("debt_burden_high", "overdue"),
    ("large_outflow", "balance_break"),
    ("round_trip", "related_transfer_heavy"),
    ("income_volatile", "balance_break"),
    ("round_trip", "balance_break"),
)

Label = tuple[int, str, int]
"""(account index, behaviour, month index) of one planted behaviour."""


class World:
    """Everything drawn once for the whole sample; accounts are indexes 0..n-1, months 0..months-1."""

    def __init__(self, seed: int, n_accounts: int, months: int, end_month: date) -> None:
        self.seed = seed
        self.months = months
        rng = np.random.default_rng([seed, 0])
        vrng = np.random.default_rng([seed, 5])
        self.strings = Strings()

        first = np.datetime64(f"{end_month.year:04d}-{end_month.month:02d}", "M") - (months - 1)
        self.month_start_day = np.arange(first, first + months + 1).astype("datetime64[D]").astype(np.int64)
        self.month_len = np.diff(self.month_start_day)
        self.month_on = [np.datetime64(int(d), "D").astype(object) for d in self.month_start_day[:months]]
        self.data_end_ts = int(self.month_start_day[-1]) * DAY

        self._build_customers(rng, n_accounts)
        self._assign_behaviours(rng)
        self._draw_budgets(rng)
        self._draw_variety(vrng)
        self._stop_salaries(np.random.default_rng([seed, 6]))
        self._choose_hubs(np.random.default_rng([seed, 7]))
        self._dress_month_ends(np.random.default_rng([seed, 8]))
        self._draw_counterparties(rng)
        self._draw_related_parties(rng)
        self._intern_codes()
        self._draw_company_pools(rng)
        self.labels: list[Label] = []
        self._plan_cycles(rng, vrng)
        personal_ok = [a for a in range(self.n) if not self.is_business[a] and "balance_break" not in self.beh[a]]
        n_overlap = 2 if self.n < 100 else 3
        self.overlap_accounts = sorted(int(a) for a in rng.choice(np.array(personal_ok), size=n_overlap, replace=False))
        self.acct_series = pl.Series(self.account_ids, dtype=pl.String)

    # -- customers and accounts ----------------------------------------------------------------------
    def _build_customers(self, rng: np.random.Generator, n_accounts: int) -> None:
        n_business = max(1, round(_BUSINESS_SHARE * n_accounts)) if n_accounts >= 30 else 0
        n_personal = n_accounts - n_business
        sizes = 1 + (rng.random(n_personal) < _TWO_ACCOUNT_SHARE).astype(np.int64)
        ends = np.cumsum(sizes)
        n_cust = int(np.searchsorted(ends, n_personal)) + 1
        sizes = sizes[:n_cust]
        sizes[-1] -= int(ends[n_cust - 1] - n_personal)
        kinds = [("personal", int(k)) for k in sizes] + [("business", 1)] * n_business
        order = rng.permutation(len(kinds))
        kinds = [kinds[i] for i in order]

        self.n = n_accounts
        self.n_customers = len(kinds)
        self.customer_ids: list[str] = []
        self.cust_of = np.empty(n_accounts, dtype=np.int64)
        self.is_business = np.zeros(n_accounts, dtype=bool)
        self.other = np.full(n_accounts, -1, dtype=np.int64)
        self.holder: list[str] = []
        self.account_ids: list[str] = []
        self.bank = np.empty(n_accounts, dtype=np.int64)
        self.city = rng.integers(0, len(CITIES), size=n_accounts)
        used_ids: set[str] = set()
        used_names: set[str] = set()
        a = 0
        for c, (kind, size) in enumerate(kinds):
            self.customer_ids.append(f"C{c + 1:07d}")
            if kind == "business":
                name = unique(used_names, lambda: company(rng, EMPLOYER_KINDS + TRADE_KINDS))
            else:
                name = unique(used_names, lambda: person(rng))
            for k in range(size):
                bank = int(rng.integers(0, len(BANKS)))
                if kind == "business":
                    prefix, length = "3100", 19
                else:
                    prefix, length = BANKS[bank][0], 16 if rng.random() < 0.5 else 19
                acct = unique(used_ids, partial(digits, rng, prefix, length))
                self.account_ids.append(acct)
                self.holder.append(name)
                self.bank[a] = bank
                self.cust_of[a] = c
                self.is_business[a] = kind == "business"
                if size == 2:
                    self.other[a] = a + 1 if k == 0 else a - 1
                a += 1
        self.holder_names = used_names

    # -- behaviours -----------------------------------------------------------------------------------
    def _assign_behaviours(self, rng: np.random.Generator) -> None:
        self.beh: list[set[str]] = [set() for _ in range(self.n)]
        personal = [int(a) for a in rng.permutation(np.flatnonzero(~self.is_business))]
        pool = iter(personal)
        share = {b: _NEW_BEHAVIOUR_SHARE if b in NEW_BEHAVIOURS else _BEHAVIOUR_SHARE for b in BEHAVIOURS}
        # cycles are planted in groups below; income_stopped on ordinary salaried accounts (`_stop_salaries`),
        # gather_scatter and window_dressing on ordinary accounts (`_choose_hubs`, `_dress_month_ends`)
        later = ("cycle", "income_stopped", "gather_scatter", "window_dressing")
        quota = {b: max(2, round(share[b] * len(personal))) for b in BEHAVIOURS if b not in later}
        n_pairs = max(1, round(_PAIR_SHARE * sum(quota.values())))
        for k in range(n_pairs):
            first, second = _COMPATIBLE_PAIRS[k % len(_COMPATIBLE_PAIRS)]
            if quota[first] > 1 and quota[second] > 1:
                self.beh[next(pool)] |= {first, second}
                quota[first] -= 1
                quota[second] -= 1
        for behaviour, count in quota.items():
            for _ in range(count):
                self.beh[next(pool)].add(behaviour)
        # Cycles join 3-8 accounts of different customers that carry no other behaviour: the first group 3-4,
        # the second 5-8 (long chains), any further 3-8.
        free = list(pool)
        n_groups = max(2, round(_BEHAVIOUR_SHARE * len(personal) / 4.5))
        self.cycle_groups: list[list[int]] = []
        for g in range(n_groups):
            size = int(rng.integers(3, 5) if g == 0 else rng.integers(5, 9) if g == 1 else rng.integers(3, 9))
            group: list[int] = []
            while free and len(group) < size:
                a = free.pop()
                if all(self.cust_of[a] != self.cust_of[g] for g in group):
                    group.append(a)
            if len(group) < 3:
                break
            for a in group:
                self.beh[a].add("cycle")
            self.cycle_groups.append(group)

    # -- per-account habits ---------------------------------------------------------------------------
    def _draw_budgets(self, rng: np.random.Generator) -> None:
        """Pay, spending shares, pay and bill days, the everyday lender and the opening balance."""
        n = self.n
        salary = np.clip(rng.lognormal(np.log(11_000), 0.5, n), 5_000, 40_000)
        self.salary = np.rint(salary / 10) * 10  # yuan, base monthly pay
        volatile = np.array(["income_volatile" in b for b in self.beh])
        self.has_salary = ~self.is_business & ~volatile
        self.salary_day = np.where(rng.random(n) < 0.2, 24, rng.integers(9, 15, size=n))  # 0-based day
        self.lam = rng.uniform(40, 105, size=n)  # merchant transactions per month
        self.merchant_share = rng.uniform(0.2, 0.4, size=n)
        self.rent_share = np.where(rng.random(n) < 0.7, rng.uniform(0.2, 0.35, size=n), 0.0)
        self.rent_day = rng.integers(0, 5, size=n)
        # Credit card and the one normal lender stay below ~13% of pay each (debt service < 30%).
        self.cc_share = np.where(rng.random(n) < 0.6, rng.uniform(0.04, 0.10, size=n), 0.0)
        self.cc_day = rng.integers(17, 22, size=n)
        lender_draw = rng.random(n)
        has_lender_behaviour = np.array([bool(b & LENDER_BEHAVIOURS) for b in self.beh])
        self.base_lender = np.where(
            has_lender_behaviour, -1, np.where(lender_draw < 0.4, HUABEI, np.where(lender_draw < 0.5, JIEBEI, -1))
        )
        self.lender_share = rng.uniform(0.03, 0.10, size=n)
        self.side_prob = np.where((rng.random(n) < 0.4) & ~volatile, rng.uniform(0.05, 0.3, size=n), 0.0)
        # Family and own-account transfers are sized on the account's usual spending, so they stay a
        # small share of its outflow (a high earner with no rent spends little).
        spend = self.merchant_share + self.rent_share + self.cc_share + 0.05
        self.family_share = rng.uniform(0.05, 0.12, size=n) * spend
        self.own_share = spend
        self.opening_share = rng.uniform(0.5, 4.0, size=n)
        self.floor_cents = yuan(rng.uniform(100, 3000, size=n))

    def _draw_variety(self, vrng: np.random.Generator) -> None:
        """What makes ordinary accounts varied: low pay (2,000-4,000 a month; also every other large_outflow
        account, whose large outflow is then ~4x pay), a second currency (USD or HKD) on some ordinary
        accounts, and the depth of each overdrawn account's dip below zero."""
        n = self.n
        ordinary = np.array([not b for b in self.beh]) & ~self.is_business
        large = [a for a in range(n) if "large_outflow" in self.beh[a] and len(self.beh[a]) == 1]
        self.low_income = ordinary & (vrng.random(n) < _LOW_INCOME_SHARE)
        self.low_income[large[::2]] = True
        low_pay = np.rint(vrng.uniform(2_000, 4_000, n) / 10) * 10
        self.salary = np.where(self.low_income, low_pay, self.salary)
        self.lam = np.where(self.low_income, vrng.uniform(35, 50, n), self.lam)
        second = ordinary & ~self.low_income & (vrng.random(n) < _SECOND_CURRENCY_SHARE)
        self.second_currency = np.where(second, vrng.integers(1, len(CURRENCIES), n), 0).astype(np.int8)
        overdrawn = np.array(["overdrawn" in b for b in self.beh])
        self.overdraw_cents = np.where(overdrawn, yuan(vrng.uniform(200, 3_000, n)), 0)

    def _stop_salaries(self, srng: np.random.Generator) -> None:
        """income_stopped: on a few ordinary salaried accounts the salary stops for the last
        `_INCOME_STOPPED_MONTHS` months. Drawn from a generator of its own, so every other account keeps its
        behaviours and habits; the statement's per-row draws (how a number is masked, ...) of the accounts after it
        in its part shift with the rows it no longer has.
        `salary_stop_month`: the first month without salary (the number of months where it never stops)."""
        candidates = np.flatnonzero(np.array([not b for b in self.beh]) & self.has_salary & ~self.is_business)
        count = min(candidates.size, max(2, round(_INCOME_STOPPED_SHARE * int((~self.is_business).sum()))))
        stopped = np.sort(srng.choice(candidates, size=count, replace=False))
        for a in stopped:
            self.beh[int(a)].add("income_stopped")
        self.salary_stop_month = np.full(self.n, self.months, np.int64)
        self.salary_stop_month[stopped] = self.months - _INCOME_STOPPED_MONTHS

    def _choose_hubs(self, hrng: np.random.Generator) -> None:
        """gather_scatter: a few ordinary personal accounts become collecting hubs (`synthetic.behaviours`).
        Chosen with a generator of their own after every other behaviour, so no other account changes what
        is planted on it."""
        candidates = np.flatnonzero(np.array([not b for b in self.beh]) & ~self.is_business)
        count = min(candidates.size, max(2, round(_GATHER_SCATTER_SHARE * int((~self.is_business).sum()))))
        for a in np.sort(hrng.choice(candidates, size=count, replace=False)):
            self.beh[int(a)].add("gather_scatter")

    def _dress_month_ends(self, drng: np.random.Generator) -> None:
        """window_dressing on a few ordinary personal accounts (what it plants: `synthetic.behaviours`), and its
        look-alike on others: salary paid on the month's last day (月末发薪), spent over the next weeks. Drawn from
        a generator of its own after everything else, so every other account keeps its behaviours and habits."""
        ordinary = np.flatnonzero(np.array([not b for b in self.beh]) & ~self.is_business)
        count = min(ordinary.size, max(2, round(_WINDOW_DRESSING_SHARE * int((~self.is_business).sum()))))
        for a in drng.choice(ordinary, size=count, replace=False):
            self.beh[int(a)].add("window_dressing")
        still_ordinary = np.array([not b for b in self.beh]) & self.has_salary & ~self.is_business
        month_end_pay = still_ordinary & (drng.random(self.n) < _MONTH_END_PAY_SHARE)
        self.salary_day = np.where(month_end_pay, 31, self.salary_day)  # day 31 is clipped to the month's last

    def _draw_counterparties(self, rng: np.random.Generator) -> None:
        """Employer, side-income payer, utilities, credit card, and a landlord and a friend per account
        (persons who are not related)."""
        n, s, holders = self.n, self.strings, self.holder_names
        self.employer = company_pool(rng, max(8, n // 15), EMPLOYER_KINDS, holders, s)[
            rng.integers(0, max(8, n // 15), size=n)
        ]
        self.side_payer = company_pool(rng, max(4, n // 40), EMPLOYER_KINDS, holders, s)[
            rng.integers(0, max(4, n // 40), size=n)
        ]
        self.power = np.array([s.code(POWER[c]) for c in self.city], np.int32)
        self.water = np.array([s.code(f"{CITIES[c]}自来水有限公司") for c in self.city], np.int32)
        self.cc_name = np.array([s.code(f"{BANKS[b][1]}信用卡中心") for b in self.bank], np.int32)
        self.cc_card = np.array([s.code(digits(rng, "6225", 16)) for _ in range(n)], np.int32)
        self.landlord = np.zeros((n, 2), np.int32)
        self.friend = np.zeros((n, 2), np.int32)
        for a in range(n):
            self.landlord[a] = (s.code(other_person(rng, holders)), s.code(person_card(rng)))
            self.friend[a] = (s.code(other_person(rng, holders)), s.code(person_card(rng)))

    def _draw_related_parties(self, rng: np.random.Generator) -> None:
        """Each customer's declared related parties (name, card, relation), and per account its spouse
        and family as (name code, card code) pairs: the ones family transfers go to."""
        holders = self.holder_names
        self.related: list[list[tuple[str, str, str]]] = [[] for _ in range(self.n_customers)]
        for a in range(self.n):
            c = int(self.cust_of[a])
            if self.related[c] or (self.other[a] >= 0 and a > self.other[a]):
                continue
            surname = self.holder[a][0]
            parties: list[tuple[str, str]]
            if self.is_business[a]:
                parties = [
                    (other_person(rng, holders), "legal_representative"),
                    (other_person(rng, holders), "shareholder"),
                ]
            else:
                mine = self.beh[a] | (self.beh[int(self.other[a])] if self.other[a] >= 0 else set())
                needs_two = bool(mine & {"related_transfer_heavy", "round_trip"})
                parties = []
                if rng.random() < 0.6 or needs_two:
                    parties.append((other_person(rng, holders), "spouse"))
                if rng.random() < 0.7 or needs_two:
                    parties.append((other_person(rng, holders, surname), "family"))
                if rng.random() < 0.3:
                    parties.append((other_person(rng, holders, surname), "family"))
            self.related[c] = [(name, person_card(rng), rel) for name, rel in parties]
        s = self.strings
        self.family = np.zeros((self.n, 3, 2), np.int32)
        self.n_family = np.zeros(self.n, np.int64)
        for a in range(self.n):
            family = [p for p in self.related[int(self.cust_of[a])] if p[2] in ("spouse", "family")]
            self.n_family[a] = len(family)
            for k, (name, card, _) in enumerate(family):
                self.family[a, k] = (s.code(name), s.code(card))

    def _intern_codes(self) -> None:
        """String codes of the accounts, their holders and the lenders' names, accounts and memos."""
        s = self.strings
        self.acct_code = np.array([s.code(x) for x in self.account_ids], np.int32)
        self.holder_code = np.array([s.code(x) for x in self.holder], np.int32)
        self.lender_disb = np.array([s.code(x.disburse_name) for x in LENDERS], np.int32)
        self.lender_repay = np.array([s.code(x.repay_name) for x in LENDERS], np.int32)
        self.lender_disb_acct = np.array(
            [s.code(fixed_account(x.disburse_name or x.repay_name)) for x in LENDERS], np.int32
        )
        self.lender_repay_acct = np.array([s.code(fixed_account(x.repay_name)) for x in LENDERS], np.int32)
        self.lender_disb_memo = np.array([s.code(x.disburse_memo) for x in LENDERS], np.int32)
        self.lender_repay_memo = np.array([s.code(x.repay_memo) for x in LENDERS], np.int32)

    def _draw_company_pools(self, rng: np.random.Generator) -> None:
        """Companies shared by all accounts: trading partners, suppliers, clients, estate developers."""
        n, s, holders = self.n, self.strings, self.holder_names
        self.trade_pool = company_pool(rng, max(30, n // 10), TRADE_KINDS, holders, s)
        self.supplier_pool = company_pool(rng, max(20, n // 15), SUPPLIER_KINDS, holders, s)
        self.client_pool = company_pool(rng, max(20, n // 20), EMPLOYER_KINDS, holders, s)
        self.estate_pool = company_pool(rng, 10, ("房地产开发",), holders, s)

    # -- cross-account cycles (planned once, both legs of every hop) --------------------------------
    def _plan_cycles(self, rng: np.random.Generator, vrng: np.random.Generator) -> None:
        """Money around each group, once or twice: each hop 0-3 days after the last (a chain spans up to ~3
        weeks), each holder passing on what arrived less a fee of 0.1-2 %. In groups of 5 or more, one or two
        holders keep it in USD or HKD (the hop into them and out of them changes currency at the reference
        rates). Odd groups move small sums (3,000-9,500), the others 50,000-200,000. Labels: the months of
        each holder's legs."""
        s = self.strings
        rows: list[tuple[int, ...]] = []
        transfer, netbank = s.code("转账"), s.code("网银")
        rate = np.array([float(r) for r in RATE_TO_CNY])
        for g, group in enumerate(self.cycle_groups):
            k = len(group)
            holds = np.zeros(k, np.int64)
            if k >= 5:
                at = vrng.choice(np.arange(1, k), size=int(vrng.integers(1, 3)), replace=False)
                holds[at] = vrng.integers(1, len(CURRENCIES), at.size)
            n_cycles = 2 if self.months >= 8 and rng.random() < 0.4 else 1
            last = self.months if k <= 4 else self.months - 1
            for drawn in rng.choice(np.arange(1, last), size=n_cycles, replace=False):
                m = int(drawn)
                t = (int(self.month_start_day[m]) + int(rng.integers(0, 15))) * DAY + int(tod(rng, 1, 9, 17)[0])
                low, high = (3_000, 9_500) if g % 2 else (50_000, 200_000)
                amount = int(round_to(rng.uniform(low, high) * 100, 100_00)[0])
                for hop in range(k):
                    src, dst = group[hop], group[(hop + 1) % k]
                    cur_src, cur_dst = int(holds[hop]), int(holds[(hop + 1) % k])
                    if hop:
                        amount = int(np.rint(amount * (1 - vrng.uniform(0.001, 0.02))))
                        t += int(vrng.integers(0, 4)) * DAY + int(rng.integers(-2 * HOUR, 2 * HOUR))
                    lag = int(rng.integers(5, 300))
                    arrived = int(np.rint(amount * rate[cur_src] / rate[cur_dst]))
                    rows.append(
                        (src, t, -amount, self.holder_code[dst], self.acct_code[dst], transfer, netbank, False, cur_src)
                    )
                    rows.append(
                        (
                            dst,
                            t + lag,
                            arrived,
                            self.holder_code[src],
                            self.acct_code[src],
                            transfer,
                            netbank,
                            False,
                            cur_dst,
                        )
                    )
                    amount = arrived
                    self.labels.append((src, "cycle", self._month_of(t)))
                    self.labels.append((dst, "cycle", self._month_of(t + lag)))
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in Events.FIELDS]
        self.cycle_rows: dict[str, np.ndarray] = {
            f: np.array(c, dtype=dt) for f, c, dt in zip(Events.FIELDS, columns, Events.DTYPES, strict=True)
        }

    def _month_of(self, ts: int) -> int:
        return int(np.searchsorted(self.month_start_day, ts // DAY, side="right") - 1)
