"""Lenders on the statements: disbursements (放款), repayments and instalment loans, and the behaviours
planted through them: multi_lender (and its labels, computed from the disbursements), borrow_to_repay,
overdue and debt_burden_high (planted, and labelled wherever the repayments of the others carry it)."""

from __future__ import annotations

from collections.abc import Set

import numpy as np
from numpy.typing import ArrayLike

from synthetic.catalogue import LOAN_LENDERS
from synthetic.draws import DAY, HOUR, round_to, tod, yuan
from synthetic.part import Part

MULTI_LENDER_WINDOW_DAYS = 90
MULTI_LENDER_MIN_LENDERS = 4
DEBT_BURDEN_MONTHS = 3
DEBT_BURDEN_MAX_RATIO = 0.5


def disburse(part: Part, a: int, lender: int, t: int, cents: int) -> None:
    """`lender` pays `cents` into account `a` at epoch second `t` (remembered for the multi_lender labels)."""
    w = part.w
    part.events.add(
        a, t, cents, w.lender_disb[lender], w.lender_disb_acct[lender], w.lender_disb_memo[lender], part.c("网银")
    )
    part.disbursements.append((a, t // DAY, lender))


def repay(part: Part, a: int, lender: int, t: ArrayLike, cents: ArrayLike, *, refinanced: bool = False) -> None:
    """Account `a` repays `lender`: one row per time in `t`, `cents` each (one amount or one per row).
    `refinanced`: paid off with another lender's loan (以贷养贷), not out of income (`label_debt_burden`)."""
    w = part.w
    if not refinanced:
        times, amounts = np.broadcast_arrays(np.atleast_1d(t), np.atleast_1d(cents))
        months = np.searchsorted(w.month_start_day, times // DAY, side="right") - 1
        part.repaid.extend(zip([a] * months.size, months.tolist(), amounts.tolist(), strict=True))
    part.events.add(
        a,
        t,
        -np.asarray(cents),
        w.lender_repay[lender],
        w.lender_repay_acct[lender],
        w.lender_repay_memo[lender],
        part.c("网银"),
    )


def loan(
    part: Part,
    a: int,
    lender: int,
    m0: int,
    day0: int,
    principal: int,
    n_inst: int,
    factor: float,
    skip: Set[int] = frozenset(),
) -> None:
    """Disburse in month m0, then monthly instalments from m0+1 on the same day (within the data)."""
    disburse(part, a, lender, int(part.ts(m0, day0, tod(part.rng, 1)[0])), principal)
    months = np.arange(m0 + 1, min(m0 + 1 + n_inst, part.w.months))
    months = np.array([m for m in months if m not in skip], dtype=np.int64)
    if months.size:
        inst = int(np.rint(principal * factor / n_inst))
        repay(part, a, lender, part.ts(months, day0, tod(part.rng, months.size)), inst)


def plant_multi_lender(part: Part) -> None:
    """4-6 platforms disburse within ~45 days; each is repaid in monthly instalments afterwards."""
    w, rng = part.w, part.rng
    for a in part.accounts_with("multi_lender"):
        lenders = rng.choice(np.array(LOAN_LENDERS), size=int(rng.integers(4, 7)), replace=False)
        b = int(rng.integers(1, w.months - 2))
        start = int(w.month_start_day[b]) + int(rng.integers(0, 20))
        offsets = np.sort(rng.choice(45, size=lenders.size, replace=False))
        for lender, off in zip(lenders, offsets, strict=True):
            day = start + int(off)
            m = part.month_of(day * DAY)
            principal = int(round_to(max(2_000, w.salary[a] * rng.uniform(0.4, 1.2)) * 100, 100_00)[0])
            loan(part, a, int(lender), m, day - int(w.month_start_day[m]), principal, 12, 1.08)


def label_multi_lender(part: Part) -> None:
    """Label month M when >= 4 distinct lenders disbursed in the 90 days ending on M's last day."""
    w = part.w
    if not part.disbursements:
        return
    disb = np.array(part.disbursements, dtype=np.int64)
    for a in part.accounts_with("multi_lender"):
        mine = disb[disb[:, 0] == a]
        months = []
        for m in range(w.months):
            end = w.month_start_day[m + 1]
            inside = (mine[:, 1] >= end - MULTI_LENDER_WINDOW_DAYS) & (mine[:, 1] < end)
            if np.unique(mine[inside, 2]).size >= MULTI_LENDER_MIN_LENDERS:
                months.append(m)
        part.label(a, "multi_lender", months)


def plant_borrow_to_repay(part: Part) -> None:
    """Lender B lends; later A lends and within 1-7 days B is paid off; then C lends and A is paid off."""
    w, rng = part.w, part.rng
    M = w.months
    for a in part.accounts_with("borrow_to_repay"):
        b_, a_, c_ = (int(x) for x in rng.choice(np.array(LOAN_LENDERS), size=3, replace=False))
        m0 = int(rng.integers(0, M - 4))
        p1 = m0 + 1 + int(rng.integers(0, 2))
        p2 = min(p1 + 1 + int(rng.integers(0, 2)), M - 1)
        owed = int(round_to(w.salary[a] * rng.uniform(0.8, 1.8) * 100, 100_00)[0])
        disburse(part, a, b_, int(part.ts(m0, rng.integers(0, 20), tod(rng, 1)[0])), owed)
        repaid_months = []
        for pm, new, old in ((p1, a_, b_), (p2, c_, a_)):
            new_amount = int(round_to(owed * rng.uniform(0.95, 1.08), 100_00)[0])
            t = int(part.ts(pm, rng.integers(0, int(w.month_len[pm]) - 8), tod(rng, 1, 8, 20)[0]))
            disburse(part, a, new, t, new_amount)
            payoff = int(np.rint(owed * rng.uniform(1.005, 1.03)))
            t_pay = t + int(rng.integers(1, 8)) * DAY + int(rng.integers(-HOUR, HOUR))
            repay(part, a, old, t_pay, payoff, refinanced=True)
            repaid_months.append(part.month_of(t_pay))
            owed = new_amount
        months = np.arange(p2 + 1, M)
        if months.size:
            repay(part, a, c_, part.ts(months, 10, tod(rng, months.size)), int(np.rint(owed * 1.06 / 12)))
        part.label(a, "borrow_to_repay", repaid_months)


def plant_overdue(part: Part) -> None:
    """A loan whose instalment fails (debit + 冲正) in chosen months, then 逾期罚息 / 滞纳金 and a late payment."""
    w, rng, c = part.w, part.rng, part.c
    M = w.months
    for a in part.accounts_with("overdue"):
        lender = int(rng.choice(np.array(LOAN_LENDERS)))
        chosen = sorted(int(m) for m in rng.choice(np.arange(2, M), size=int(rng.integers(2, 4)), replace=False))
        due = int(rng.integers(4, 15))
        principal = int(round_to(w.salary[a] * rng.uniform(1.0, 2.5) * 100, 100_00)[0])
        n_inst = max(12, M)
        inst = int(np.rint(principal * 1.1 / n_inst))
        loan(part, a, lender, 0, due, principal, n_inst, 1.1, skip=set(chosen))
        name, acct = w.lender_repay[lender], w.lender_repay_acct[lender]
        for m in chosen:
            t = int(part.ts(m, due, tod(rng, 1, 7, 12)[0]))
            repay(part, a, lender, t, inst)
            part.events.add(a, t + int(rng.integers(30, 600)), inst, name, acct, c("冲正 扣款失败 余额不足"), c("网银"))
            late = t + int(rng.integers(2, 11)) * DAY + int(rng.integers(0, 4 * HOUR))
            rows = [
                (
                    a,
                    late,
                    -int(yuan(inst / 100 * rng.uniform(0.01, 0.05))[0]),
                    name,
                    acct,
                    c("逾期罚息"),
                    c("网银"),
                    False,
                )
            ]
            if rng.random() < 0.6:
                rows.append(
                    (a, late + 60, -int(yuan(rng.uniform(20, 100))[0]), name, acct, c("滞纳金"), c("网银"), False)
                )
            if rng.random() < 0.2:
                rows.append(
                    (a, late + 120, -int(yuan(rng.uniform(50, 300))[0]), name, acct, c("违约金"), c("网银"), False)
                )
            part.events.add_rows(rows)
            repay(part, a, lender, late + 600, inst)
        part.label(a, "overdue", chosen)


def plant_debt_burden_high(part: Part) -> None:
    """>= 3 consecutive months where repayments to 1-2 lenders exceed 60% of that month's income."""
    w, rng = part.w, part.rng
    M = w.months
    for a in part.accounts_with("debt_burden_high"):
        k = int(rng.integers(3, min(5, M - 2) + 1))
        c0 = int(rng.integers(1, M - k + 1))
        months = np.arange(c0, c0 + k)
        i = a - part.a0
        income = part.salary_cents[i, months] + part.side_cents[i, months]
        total = np.rint(income * rng.uniform(0.68, 0.9, k)).astype(np.int64)
        lenders = rng.choice(np.array(LOAN_LENDERS), size=1 + int(rng.random() < 0.5), replace=False)
        shares = [1.0] if lenders.size == 1 else [0.6, 0.4]
        for lender, share in zip(lenders, shares, strict=True):
            repaid = np.rint(total * share).astype(np.int64)
            principal = int(round_to(repaid.sum() / 1.08, 100_00)[0])
            disburse(part, a, int(lender), int(part.ts(c0 - 1, rng.integers(0, 20), tod(rng, 1)[0])), principal)
            repay(part, a, int(lender), part.ts(months, int(rng.integers(4, 25)), tod(rng, k)), repaid)
        part.label(a, "debt_burden_high", months)


def label_debt_burden(part: Part) -> None:
    """The debt burden is a fact of the account, whichever behaviour put the loans there: five platforms' instalments
    (multi_lender) or a loan in arrears beside them can take more than half the income. Label month M of any
    account when its repayments out of income (not the refinanced payoffs) over the 3 months ending at M exceed
    50 % of its income (salary and side income) over those months; planted debt_burden_high keeps its own labels."""
    w = part.w
    if not part.repaid:
        return
    rows = np.array(part.repaid, dtype=np.int64)
    for a in np.unique(rows[:, 0]):
        if "debt_burden_high" in w.beh[a]:
            continue
        i = int(a) - part.a0
        mine = rows[rows[:, 0] == a]
        inside = (mine[:, 1] >= 0) & (mine[:, 1] < w.months)
        repaid = np.bincount(mine[inside, 1], weights=mine[inside, 2], minlength=w.months)
        income = (part.salary_cents[i] + part.side_cents[i]).astype(np.float64)
        window = np.ones(DEBT_BURDEN_MONTHS)
        repaid_3 = np.convolve(repaid, window)[: w.months]
        income_3 = np.convolve(income, window)[: w.months]
        # the statement's last month is the as-of month of a run on it, never a judged full month
        months = [
            m
            for m in range(DEBT_BURDEN_MONTHS - 1, w.months - 1)
            if income_3[m] > 0 and repaid_3[m] > DEBT_BURDEN_MAX_RATIO * income_3[m]
        ]
        part.label(int(a), "debt_burden_high", months)
