"""Everyday life on the statements, the bulk of the rows: for personal accounts pay, side income,
merchant spending (with refunds), rent, utilities, credit card, family and own-account transfers, cash,
interest and at most one lender used normally, drawn vectorised over accounts x months; for business
accounts the receipts and payments of a trading company."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.catalogue import CHANNEL_MEMO, FAMILY_MEMOS, HUABEI, JIEBEI, MERCHANTS, SIDE_MEMOS
from synthetic.draws import DAY, HOUR, round_to, tod, yuan
from synthetic.lending import loan
from synthetic.part import Part


@dataclass(frozen=True)
class _Cells:
    """The part's personal accounts x the months, flattened: one cell per account-month."""

    acc: np.ndarray
    """The part's personal accounts."""
    aa: np.ndarray
    """The account of each cell."""
    mm: np.ndarray
    """The month of each cell."""
    salary: np.ndarray
    """The base monthly pay (yuan) of each cell's account."""

    @property
    def n(self) -> int:
        return int(self.aa.size)


def personal_base(part: Part) -> None:
    """Everyday life of the part's personal accounts, in the order the steps draw from the generator."""
    w = part.w
    acc = np.arange(part.a0, part.a1)
    acc = acc[~w.is_business[acc]]
    if acc.size == 0:
        return
    aa = np.repeat(acc, w.months)
    cells = _Cells(acc, aa, np.tile(np.arange(w.months), acc.size), w.salary[aa])
    _salary(part, cells)
    _side_income(part, cells)
    merchants(part, cells)
    _bills(part, cells)
    _family_transfers(part, cells)
    _own_account_transfers(part, cells)
    _cash_and_interest(part, cells)
    _everyday_lender(part, cells)


def _salary(part: Part, cells: _Cells) -> None:
    """Salary (代发工资), stable with +-5% noise; none from an income_stopped account's stop month on."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    paid = w.has_salary[aa] & (mm < w.salary_stop_month[aa])
    pay = yuan(S * rng.uniform(0.95, 1.05, ncell))
    # Paid on the 10th-15th (a day either way), or on the 25th.
    day = w.salary_day[aa]
    pay_day = np.where(day < 20, np.clip(day + rng.integers(-1, 2, ncell), 9, 14), day)
    part.salary_cents[aa[paid] - part.a0, mm[paid]] = pay[paid]
    ev.add(
        aa[paid],
        part.ts(mm, pay_day, tod(rng, ncell, 8, 12))[paid],
        pay[paid],
        w.employer[aa[paid], 0],
        w.employer[aa[paid], 1],
        c("代发工资"),
        c("代发"),
    )
    for a in part.accounts_with("income_stopped"):
        part.label(a, "income_stopped", range(int(w.salary_stop_month[a]), w.months))


def _side_income(part: Part, cells: _Cells) -> None:
    """Occasional small side income from a company (稿费, 讲课费 ...)."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    side = rng.random(ncell) < w.side_prob[aa]
    side_pay = round_to(S * rng.uniform(0.02, 0.08, ncell) * 100, 100)
    part.side_cents[aa[side] - part.a0, mm[side]] = side_pay[side]
    ev.add(
        aa[side],
        part.ts(mm, rng.integers(0, 28, ncell), tod(rng, ncell))[side],
        side_pay[side],
        w.side_payer[aa[side], 0],
        w.side_payer[aa[side], 1],
        np.array([c(x) for x in SIDE_MEMOS], np.int32)[rng.integers(0, 3, ncell)][side],
        c("网银"),
    )


def _bills(part: Part, cells: _Cells) -> None:
    """Rent to a landlord (person), utilities, credit card."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    rent = w.rent_share[aa] > 0
    ev.add(
        aa[rent],
        part.ts(mm, w.rent_day[aa], tod(rng, ncell, 8, 22))[rent],
        -round_to(S * w.rent_share[aa] * 100, 100_00)[rent],
        w.landlord[aa[rent], 0],
        w.landlord[aa[rent], 1],
        c("房租"),
        c("手机银行"),
    )
    ev.add(
        aa,
        part.ts(mm, rng.integers(5, 20, ncell), tod(rng, ncell)),
        -yuan(rng.uniform(60, 450, ncell) * np.clip(S / 15_000, 0.6, 1.5)),
        w.power[aa],
        0,
        c("电费"),
        c("代扣"),
    )
    water = mm % 2 == 0
    ev.add(
        aa[water],
        part.ts(mm, rng.integers(10, 25, ncell), tod(rng, ncell))[water],
        -yuan(rng.uniform(30, 160, ncell))[water],
        w.water[aa[water]],
        0,
        c("水费"),
        c("代扣"),
    )
    cc = w.cc_share[aa] > 0
    ev.add(
        aa[cc],
        part.ts(mm, w.cc_day[aa], tod(rng, ncell))[cc],
        -yuan(S * w.cc_share[aa] * rng.uniform(0.7, 1.3, ncell))[cc],
        w.cc_name[aa[cc]],
        w.cc_card[aa[cc]],
        c("信用卡还款"),
        c("网银"),
    )


def _family_transfers(part: Part, cells: _Cells) -> None:
    """Family: a few transfers out (<= ~10% of pay), now and then a red packet in."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    n_fam = w.n_family[aa]
    count = np.where(n_fam > 0, rng.choice(4, size=ncell, p=[0.2, 0.35, 0.3, 0.15]), 0)
    fa = np.repeat(aa, count)
    fm = np.repeat(mm, count)
    nf = fa.size
    each = (S * w.family_share[aa] / np.maximum(count, 1))[np.repeat(np.arange(ncell), count)]
    amount = round_to(np.clip(each * rng.uniform(0.6, 1.4, nf), 100, 2000) * 100, 10_00)
    who = (rng.random(nf) * w.n_family[fa]).astype(np.int64)
    memos = np.array([c(x) for x in FAMILY_MEMOS], np.int32)
    ev.add(
        fa,
        part.ts(fm, rng.integers(0, 28, nf), tod(rng, nf)),
        -amount,
        w.family[fa, who, 0],
        w.family[fa, who, 1],
        memos[rng.integers(0, len(memos), nf)],
        c("手机银行"),
    )
    back = (n_fam > 0) & (rng.random(ncell) < 0.08)
    who = (rng.random(ncell) * np.maximum(n_fam, 1)).astype(np.int64)
    ev.add(
        aa[back],
        part.ts(mm, rng.integers(0, 28, ncell), tod(rng, ncell))[back],
        round_to(rng.uniform(100, 1000, ncell) * 100, 10_00)[back],
        w.family[aa, who, 0][back],
        w.family[aa, who, 1][back],
        c("红包"),
        c("手机银行"),
    )


def _own_account_transfers(part: Part, cells: _Cells) -> None:
    """Own other account: both legs (the other account is in the dataset)."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    own = (w.other[aa] >= 0) & (rng.random(ncell) < 0.2)
    t = part.ts(mm, rng.integers(0, 28, ncell), tod(rng, ncell))[own]
    amount = round_to(S * w.own_share[aa] * rng.uniform(0.05, 0.2, ncell) * 100, 100_00)[own]
    src, dst = aa[own], w.other[aa[own]]
    ev.add(src, t, -amount, w.holder_code[src], w.acct_code[dst], c("转账"), c("手机银行"))
    ev.add(
        dst,
        t + rng.integers(5, 120, t.size),
        amount,
        w.holder_code[src],
        w.acct_code[src],
        c("转账"),
        c("手机银行"),
    )


def _cash_and_interest(part: Part, cells: _Cells) -> None:
    """ATM cash, quarterly interest."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell = cells.aa, cells.mm, cells.salary, cells.n
    atm = rng.random(ncell) < 0.25
    ev.add(
        aa[atm],
        part.ts(mm, rng.integers(0, 28, ncell), tod(rng, ncell))[atm],
        -np.minimum(rng.integers(1, 21, ncell) * 100_00, round_to(S * 30, 100_00))[atm],
        0,
        0,
        c("ATM取款"),
        c("ATM"),
    )
    month_no = (w.month_start_day[mm].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12) + 1
    interest = month_no % 3 == 0
    ev.add(
        aa[interest],
        part.ts(mm, 20, tod(rng, ncell, 8, 10))[interest],
        yuan(rng.uniform(0.5, 40, ncell))[interest],
        0,
        0,
        c("结息"),
        c("柜面"),
    )


def _everyday_lender(part: Part, cells: _Cells) -> None:
    """At most one lender, used normally: monthly 花呗 repayments, or one 借呗 loan in instalments."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    aa, mm, S, ncell, acc = cells.aa, cells.mm, cells.salary, cells.n, cells.acc
    hb = w.base_lender[aa] == HUABEI
    ev.add(
        aa[hb],
        part.ts(mm, 8, tod(rng, ncell))[hb],
        -yuan(S * w.lender_share[aa] * rng.uniform(0.7, 1.3, ncell))[hb],
        w.lender_repay[HUABEI],
        w.lender_repay_acct[HUABEI],
        w.lender_repay_memo[HUABEI],
        c("支付宝"),
    )
    for a in acc[w.base_lender[acc] == JIEBEI]:
        m0 = int(rng.integers(0, w.months - 3))
        principal = int(round_to(w.salary[a] * rng.uniform(0.5, 1.2) * 100, 100_00)[0])
        loan(part, a, JIEBEI, m0, int(rng.integers(0, 20)), principal, 12, 1.06)


def merchants(part: Part, cells: _Cells) -> None:
    """Card and app spending at merchants (~40-105 a month, amounts scaled to pay), a few refunded."""
    w, rng, c = part.w, part.rng, part.c
    aa, mm, S = cells.aa, cells.mm, cells.salary
    names = np.array([c(x[0]) for x in MERCHANTS], np.int32)
    median = np.array([x[1] for x in MERCHANTS])
    weight = np.array([x[2] for x in MERCHANTS])
    chans = np.array([[c(ch) for ch in x[3]] for x in MERCHANTS], np.int32)
    memo_of_chan = {c(ch): c(memo) for ch, memo in CHANNEL_MEMO.items()}
    memos = np.zeros(chans.max() + 1, np.int32)
    for ch, memo in memo_of_chan.items():
        memos[ch] = memo
    cum = np.cumsum(weight / weight.sum())
    mean_ticket = float((weight * median).sum() / weight.sum()) * np.exp(0.5**2 / 2)

    count = np.maximum(rng.poisson(w.lam[aa]), (0.7 * w.lam[aa]).astype(np.int64))
    ra = np.repeat(aa, count)
    rm = np.repeat(mm, count)
    Sr = np.repeat(S, count)
    n = ra.size
    merchant = np.minimum(np.searchsorted(cum, rng.random(n)), len(MERCHANTS) - 1)
    scale = np.clip(w.salary[ra] * w.merchant_share[ra] / w.lam[ra] / mean_ticket, 0.4, 3.0)
    cents = yuan(np.clip(median[merchant] * rng.lognormal(0, 0.5, n) * scale, 1, 0.4 * Sr))
    day = (rng.random(n) * w.month_len[rm]).astype(np.int64)
    peak = rng.random(n)
    secs = np.where(
        peak < 0.3,
        rng.integers(11 * HOUR + 1800, 13 * HOUR + 1800, n),
        np.where(peak < 0.6, rng.integers(17 * HOUR + 1800, 21 * HOUR, n), tod(rng, n)),
    )
    chan = chans[merchant, rng.integers(0, 2, n)]
    t = part.ts(rm, day, secs)
    part.events.add(ra, t, -cents, names[merchant], 0, memos[chan], chan)
    refund = rng.random(n) < 0.012
    t_back = (t // DAY + rng.integers(1, 6, n)) * DAY + tod(rng, n)
    refund &= t_back < w.data_end_ts
    part.events.add(ra[refund], t_back[refund], cents[refund], names[merchant][refund], 0, c("退款"), chan[refund])


def business_base(part: Part) -> None:
    """A trading company: many 货款 receipts, supplier payments, payroll, tax, rent, fees."""
    w, rng, ev, c = part.w, part.rng, part.events, part.c
    M = w.months
    for a in range(part.a0, part.a1):
        if not w.is_business[a]:
            continue
        revenue = rng.uniform(200_000, 1_500_000)
        customers = w.trade_pool[rng.choice(len(w.trade_pool), size=12, replace=False)]
        suppliers = w.supplier_pool[rng.choice(len(w.supplier_pool), size=6, replace=False)]
        landlord = w.estate_pool[int(rng.integers(0, len(w.estate_pool)))]
        for m in range(M):
            total = revenue * rng.uniform(0.85, 1.15)
            n_in = int(rng.integers(15, 35))
            share = rng.dirichlet(np.full(n_in, 3.0))
            who = customers[rng.integers(0, len(customers), n_in)]
            ev.add(
                a,
                part.ts(m, rng.integers(0, 28, n_in), tod(rng, n_in, 9, 18)),
                yuan(total * share),
                who[:, 0],
                who[:, 1],
                c("货款"),
                c("网银"),
            )
            n_out = int(rng.integers(8, 20))
            share = rng.dirichlet(np.full(n_out, 3.0))
            who = suppliers[rng.integers(0, len(suppliers), n_out)]
            memo = np.where(rng.random(n_out) < 0.5, c("货款"), c("采购款"))
            ev.add(
                a,
                part.ts(m, rng.integers(0, 28, n_out), tod(rng, n_out, 9, 18)),
                -yuan(total * 0.6 * share),
                who[:, 0],
                who[:, 1],
                memo,
                c("网银"),
            )
            fixed = [
                (-yuan(total * 0.18), 14, 0, 0, c("代发工资"), c("代发")),
                (-yuan(total * rng.uniform(0.03, 0.06)), 15, c("国家金库"), 0, c("税款"), c("代扣")),
                (-yuan(revenue * 0.04), 2, landlord[0], landlord[1], c("房租"), c("网银")),
                (-yuan(rng.uniform(20, 200)), 25, 0, 0, c("手续费"), c("柜面")),
            ]
            for cents, day, name, acct, desc, chan in fixed:
                ev.add(a, part.ts(m, day, tod(rng, 1, 9, 18)), cents, name, acct, desc, chan)
