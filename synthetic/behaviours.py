"""The planted behaviours that need no lender: income_volatile, large_outflow, round_trip, commingling,
balance_break, related_transfer_heavy, pass_through, fan_in, fan_out, gather_scatter, overdrawn (its labels come
from the balances, `synthetic.statement`) and window_dressing; and an ordinary second currency (购汇 and spending
abroad). Each adds a handful of rows to the accounts it is planted on and labels the months it planted (see
`synthetic.generate` for what a label month means)."""

from __future__ import annotations

import numpy as np

from synthetic.catalogue import (
    DRESSING_IN_MEMOS,
    DRESSING_OUT_MEMOS,
    FAN_MEMOS,
    FOREIGN_MERCHANTS,
    HUB_MEMOS,
    INCOME_MEMOS,
    OVERDRAWN_MEMOS,
    PASS_THROUGH_MEMOS,
    RATE_TO_CNY,
)
from synthetic.draws import DAY, HOUR, fixed_account, round_to, tod, yuan
from synthetic.names import other_person, person_card
from synthetic.part import Part


def plant_income_volatile(part: Part) -> None:
    """No salary; client payments whose monthly total swings wildly (CV > 0.8 in every 6 months)."""
    w, rng, c = part.w, part.rng, part.c
    M = w.months
    levels = np.array([0.0, 0.5, 1.3, 4.0])
    for a in part.accounts_with("income_volatile"):
        for _ in range(200):
            mult = levels[rng.choice(4, size=M, p=[0.3, 0.25, 0.25, 0.2])] * rng.uniform(0.8, 1.2, M)
            windows = np.lib.stride_tricks.sliding_window_view(mult, 6)
            cv = windows.std(axis=1) / np.maximum(windows.mean(axis=1), 1e-9)
            if cv.min() > 0.9:
                break
        else:  # pragma: no cover - the draw above practically always succeeds
            mult = np.resize([4.0, 0.0, 1.0, 0.0, 3.5, 0.3], M)
        clients = w.client_pool[rng.choice(len(w.client_pool), size=4, replace=False)]
        for m in range(M):
            total = w.salary[a] * mult[m]
            if total < 50:
                continue
            k = int(rng.integers(1, 5))
            who = clients[rng.integers(0, 4, k)]
            memo = np.array([c(x) for x in INCOME_MEMOS])[rng.integers(0, len(INCOME_MEMOS), k)]
            part.events.add(
                a,
                part.ts(m, rng.integers(0, 28, k), tod(rng, k, 9, 20)),
                yuan(total * rng.dirichlet(np.full(k, 2.0))),
                who[:, 0],
                who[:, 1],
                memo,
                c("网银"),
            )
        part.label(a, "income_volatile", range(2, M))


def plant_large_outflow(part: Part) -> None:
    """In 1-2 months from the 5th on: one payment of 3-8 months' pay (>= 30k) to a developer, a friend or a fund;
    on a low income (2,000-4,000 a month) 3.5-4.5 months' pay, far below any absolute floor."""
    w, rng, c = part.w, part.rng, part.c
    for a in part.accounts_with("large_outflow"):
        n = 1 + int(rng.random() < 0.4)
        chosen = sorted(int(m) for m in rng.choice(np.arange(4, w.months), size=n, replace=False))
        for m in chosen:
            S = w.salary[a]
            low, high = (3.5 * S, 4.5 * S) if w.low_income[a] else (max(3 * S, 30_000), 8 * S)
            cents = int(round_to(rng.uniform(low, high) * 100, 100_00)[0])
            kind = int(rng.integers(0, 3))
            if kind == 0:
                estate = w.estate_pool[int(rng.integers(0, len(w.estate_pool)))]
                name, acct, memo = estate[0], estate[1], c("购房首付")
            elif kind == 1:
                name, acct, memo = w.friend[a, 0], w.friend[a, 1], c("转账")
            else:
                fund = ("蚂蚁（杭州）基金销售有限公司", "上海天天基金销售有限公司")[int(rng.integers(0, 2))]
                name, acct, memo = c(fund), c(fixed_account(fund)), c("投资理财")
            part.events.add(a, part.ts(m, rng.integers(0, 28), tod(rng, 1, 9, 18)), -cents, name, acct, memo, c("网银"))
        part.label(a, "large_outflow", chosen)


def plant_round_trip(part: Part) -> None:
    """3-6 times a month: 20k-100k out to a party and back from it within 1-5 days, or (about half the
    trips) in from the party and back to it."""
    w, rng, c = part.w, part.rng, part.c
    for a in part.accounts_with("round_trip"):
        # Related parties often play the other side, unless the account's related share is judged too.
        fam = 0 if "related_transfer_heavy" in w.beh[a] else int(w.n_family[a])
        chosen = sorted(int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(2, 4)), replace=False))
        for m in chosen:
            k = int(rng.integers(3, 7))
            days = np.sort(rng.choice(np.arange(0, int(w.month_len[m]) - 6), size=k, replace=False))
            out = round_to(rng.uniform(20_000, 100_000, k) * 100, 1000_00)
            back = np.where(rng.random(k) < 0.5, out, yuan(out / 100 * (1 + rng.uniform(-0.02, 0.02, k))))
            related = (rng.random(k) < 0.6) & (fam > 0)
            pick = rng.integers(0, max(fam, 1), k)
            name = np.where(related, w.family[a, pick, 0], w.friend[a, 0])
            acct = np.where(related, w.family[a, pick, 1], w.friend[a, 1])
            t_out = part.ts(m, days, tod(rng, k, 9, 18))
            t_back = part.ts(m, days + rng.integers(1, 6, k), tod(rng, k, 9, 18))
            first = np.where(part.vrng.random(k) < 0.5, 1, -1)  # +1: in-then-out
            part.events.add(a, t_out, first * out, name, acct, c("转账"), c("网银"))
            part.events.add(a, t_back, -first * back, name, acct, c("往来款"), c("网银"))
        part.label(a, "round_trip", chosen)


def plant_commingling(part: Part) -> None:
    """From a start month on: >= 8 货款 receipts a month from trading companies, and supplier payments."""
    w, rng, c = part.w, part.rng, part.c
    M = w.months
    for a in part.accounts_with("commingling"):
        start = int(rng.integers(0, M // 2 + 1))
        buyers = w.trade_pool[rng.choice(len(w.trade_pool), size=int(rng.integers(4, 9)), replace=False)]
        sellers = w.supplier_pool[rng.choice(len(w.supplier_pool), size=int(rng.integers(3, 6)), replace=False)]
        for m in range(start, M):
            n_in = int(rng.integers(8, 19))
            cents = round_to(np.clip(rng.lognormal(np.log(8_000), 0.6, n_in), 2_000, 50_000) * 100, 1_00)
            who = buyers[rng.integers(0, len(buyers), n_in)]
            part.events.add(
                a,
                part.ts(m, rng.integers(0, 28, n_in), tod(rng, n_in, 8, 20)),
                cents,
                who[:, 0],
                who[:, 1],
                c("货款"),
                c("网银"),
            )
            n_out = int(rng.integers(4, 11))
            paid = yuan(cents.sum() / 100 * rng.uniform(0.8, 0.95) * rng.dirichlet(np.full(n_out, 3.0)))
            who = sellers[rng.integers(0, len(sellers), n_out)]
            memo = np.where(rng.random(n_out) < 0.5, c("货款"), c("采购款"))
            part.events.add(
                a,
                part.ts(m, rng.integers(0, 28, n_out), tod(rng, n_out, 8, 20)),
                -paid,
                who[:, 0],
                who[:, 1],
                memo,
                c("网银"),
            )
        part.label(a, "commingling", range(start, M))


def plant_balance_break(part: Part) -> None:
    """One 500-5,000 row that counts in the balances but is left out of the file."""
    w, rng, c = part.w, part.rng, part.c
    for a in part.accounts_with("balance_break"):
        m = int(rng.integers(1, w.months))
        sign = -1 if rng.random() < 0.7 else 1
        cents = sign * int(round_to(rng.uniform(500, 5000) * 100, 10_00)[0])
        part.events.add(
            a,
            part.ts(m, rng.integers(2, 20), tod(rng, 1, 9, 20)),
            cents,
            w.friend[a, 0],
            w.friend[a, 1],
            c("转账"),
            c("手机银行"),
            drop=True,
        )
        part.label(a, "balance_break", [m])


def plant_related_transfer_heavy(part: Part) -> None:
    """In >= 3 months, 4-7 transfers to related parties / own account carry 63-72% of the outflow."""
    w, rng, c = part.w, part.rng, part.c
    accounts = part.accounts_with("related_transfer_heavy")
    if not accounts:
        return
    ev = part.events.arrays()
    month = np.searchsorted(w.month_start_day, ev["ts"] // DAY, side="right") - 1
    out = (ev["cents"] < 0) & ~ev["drop"] & (month >= 0) & (month < w.months)
    outflow = np.zeros((part.a1 - part.a0, w.months), np.int64)
    np.add.at(outflow, (ev["acct"][out] - part.a0, month[out]), -ev["cents"][out])
    for a in accounts:
        fam = int(w.n_family[a])
        chosen = sorted(int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(3, 5)), replace=False))
        for m in chosen:
            base = outflow[a - part.a0, m]
            k = int(rng.integers(4, 8))
            target = base * rng.uniform(1.7, 2.6)
            cents = round_to(target * rng.dirichlet(np.full(k, 4.0)), 100_00)
            short = int(np.ceil(1.6 * base)) - int(cents.sum())
            if short > 0:
                cents[-1] += round_to(short + 100_00, 100_00)[0]
            own = (np.arange(k) == 0) & (w.other[a] >= 0)
            pick = rng.integers(0, fam, k)
            t = part.ts(m, rng.integers(0, 28, k), tod(rng, k))
            name = np.where(own, w.holder_code[a], w.family[a, pick, 0])
            acct = np.where(own, w.acct_code[max(int(w.other[a]), 0)], w.family[a, pick, 1])
            part.events.add(a, t, -cents, name, acct, c("转账"), c("手机银行"))
            if own[0]:
                part.events.add(
                    int(w.other[a]),
                    t[0] + int(rng.integers(5, 120)),
                    cents[0],
                    w.holder_code[a],
                    w.acct_code[a],
                    c("转账"),
                    c("手机银行"),
                )
        part.label(a, "related_transfer_heavy", chosen)


# -- assemble -----------------------------------------------------------------------------------------


# -- the later variety (drawn with the part's second generator) -----------------------------------------
def _strangers(part: Part, k: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(name codes, card codes) of `k` distinct persons who are neither holders nor anyone's related party
    (drawn with `rng`, by default the part's second generator)."""
    w = part.w
    rng = rng if rng is not None else part.vrng
    names: list[str] = []
    while len(names) < k:
        name = other_person(rng, w.holder_names)
        if name not in names:
            names.append(name)
    return (
        np.array([part.c(x) for x in names], np.int32),
        np.array([part.c(person_card(rng)) for _ in names], np.int32),
    )


def plant_pass_through(part: Part) -> None:
    """In 2-3 months, 3-5 receipts of 10k-60k (spread over the month) each leave within 0-3 days, 90-99 % of
    it, to one or two other parties: most of the money that arrives leaves within days."""
    w, rng, c = part.w, part.vrng, part.c
    memos = np.array([c(x) for x in PASS_THROUGH_MEMOS], np.int32)
    for a in part.accounts_with("pass_through"):
        chosen = sorted(int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(2, 4)), replace=False))
        for m in chosen:
            k = int(rng.integers(3, 6))
            span = int(w.month_len[m]) - 5
            days = np.arange(k) * span // k + rng.integers(0, 2, k)
            cents = round_to(rng.uniform(10_000, 60_000, k) * 100, 100_00)
            senders = _strangers(part, k)
            t_in = part.ts(m, days, tod(rng, k, 9, 18))
            part.events.add(a, t_in, cents, senders[0], senders[1], memos[rng.integers(0, memos.size, k)], c("网银"))
            n_out = rng.integers(1, 3, k)
            leg = np.repeat(np.arange(k), n_out)
            share = np.where(n_out[leg] == 1, 1.0, rng.uniform(0.3, 0.7, leg.size))
            share = np.where((n_out[leg] == 2) & (np.r_[False, leg[1:] == leg[:-1]]), 1 - np.r_[0.0, share[:-1]], share)
            out = yuan(cents[leg] / 100 * rng.uniform(0.90, 0.99, k)[leg] * share)
            receivers = _strangers(part, leg.size)
            t_out = (t_in[leg] // DAY + rng.integers(0, 4, leg.size)) * DAY + tod(rng, leg.size, 9, 22)
            t_out = np.maximum(t_out, t_in[leg] + rng.integers(10 * 60, HOUR, leg.size))
            part.events.add(a, t_out, -out, receivers[0], receivers[1], c("转账"), c("手机银行"))
        part.label(a, "pass_through", chosen)


def _fan(part: Part, behaviour: str, sign: int) -> None:
    """1-2 times: 6-10 distinct persons send to (sign +1) or receive from (-1) the account, 500-5,000 each,
    all within 3 days."""
    w, rng, c = part.w, part.vrng, part.c
    memos = np.array([c(x) for x in FAN_MEMOS], np.int32)
    for a in part.accounts_with(behaviour):
        chosen = sorted(int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(1, 3)), replace=False))
        for m in chosen:
            k = int(rng.integers(6, 11))
            day0 = int(rng.integers(0, int(w.month_len[m]) - 3))
            t = part.ts(m, day0 + rng.integers(0, 3, k), tod(rng, k, 8, 22))
            who = _strangers(part, k)
            cents = round_to(rng.uniform(500, 5_000, k) * 100, 10_00)
            part.events.add(a, t, sign * cents, who[0], who[1], memos[rng.integers(0, memos.size, k)], c("手机银行"))
        part.label(a, behaviour, chosen)


def plant_fan_in(part: Part) -> None:
    """>= 6 distinct senders within 3 days to one personal account (the money stays)."""
    _fan(part, "fan_in", 1)


def plant_fan_out(part: Part) -> None:
    """One personal account pays >= 6 distinct receivers within 3 days."""
    _fan(part, "fan_out", -1)


def plant_gather_scatter(part: Part) -> None:
    """A collecting hub, 1-2 times: 5-9 strangers pay the account 1,000-30,000 each (irregular sums) within 3
    days; 1-5 days after the last of them 75-97 % of it leaves for 4-7 other strangers, split otherwise (one or
    two of them paid twice); about one time in four it leaves in USD (购汇 first). The statement shows the
    cards masked, as 尾号, or not at all at its usual shares (`synthetic.statement`), so a receiver paid twice may
    appear in two forms. Drawn with a generator of its own (per part): the other behaviours' draws stay."""
    w, c = part.w, part.c
    rng = np.random.default_rng([w.seed, 7, part.a0])
    memos = np.array([c(x) for x in HUB_MEMOS], np.int32)
    chan = c("手机银行")
    for a in part.accounts_with("gather_scatter"):
        chosen = sorted(int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(1, 3)), replace=False))
        for m in chosen:
            k_in = int(rng.integers(5, 10))
            day0 = int(rng.integers(0, int(w.month_len[m]) - 9))
            t_in = np.sort(part.ts(m, day0 + rng.integers(0, 3, k_in), tod(rng, k_in, 8, 22)))
            cents = yuan(np.clip(rng.lognormal(np.log(6_000), 0.7, k_in), 1_000, 30_000))
            cents = np.where(rng.random(k_in) < 0.3, round_to(cents, 100_00), cents)  # some round, most not
            senders = _strangers(part, k_in, rng)
            part.events.add(a, t_in, cents, senders[0], senders[1], memos[rng.integers(0, memos.size, k_in)], chan)
            k_out = int(rng.integers(4, 8))
            who = np.r_[np.arange(k_out), rng.choice(k_out, size=int(rng.integers(1, 3)), replace=False)]
            total = cents.sum() * rng.uniform(0.75, 0.97)
            split = total * rng.dirichlet(np.full(who.size, 2.0))
            last = int(t_in[-1])
            t_out = (last // DAY + rng.integers(1, 5, who.size)) * DAY + tod(rng, who.size, 9, 21)
            t_out = np.maximum(t_out, last + DAY)  # 1 to 4.5 days after the last inflow
            receivers = _strangers(part, k_out, rng)
            if rng.random() < 0.25:
                rate = float(RATE_TO_CNY[1])
                foreign = yuan(split / 100 / rate)
                t_buy = int(t_out.min()) - HOUR
                part.events.add(a, t_buy, -int(np.rint(foreign.sum() * rate)), 0, 0, c("购汇"), chan)
                part.events.add(a, t_buy + 1, int(foreign.sum()), 0, 0, c("购汇"), chan, cur=1)
                part.events.add(a, t_out, -foreign, receivers[0][who], receivers[1][who], c("转账"), chan, cur=1)
            else:
                part.events.add(a, t_out, -yuan(split / 100), receivers[0][who], receivers[1][who], c("转账"), chan)
        part.label(a, "gather_scatter", chosen)


def plant_overdrawn(part: Part) -> None:
    """In 1-2 months a bill of 0.8-1.5 months' pay (装修款, 学费, 医疗费) 1-3 days before payday; the account
    opens low enough that its balance dips below zero (by `World.overdraw_cents`) — no penalty, no late fee.
    Labelled where the balances are computed: the months with a negative balance."""
    w, rng, c = part.w, part.vrng, part.c
    memos = np.array([c(x) for x in OVERDRAWN_MEMOS], np.int32)
    for a in part.accounts_with("overdrawn"):
        chosen = rng.choice(np.arange(1, w.months), size=int(rng.integers(1, 3)), replace=False)
        k = chosen.size
        payee = w.client_pool[rng.integers(0, len(w.client_pool), k)]
        day = np.maximum(int(w.salary_day[a]) - rng.integers(1, 4, k), 0)
        cents = round_to(w.salary[a] * rng.uniform(0.8, 1.5, k) * 100, 10_00)
        part.events.add(
            a,
            part.ts(chosen, day, tod(rng, k, 9, 20)),
            -cents,
            payee[:, 0],
            payee[:, 1],
            memos[rng.integers(0, 3, k)],
            c("网银"),
        )


def plant_window_dressing(part: Part) -> None:
    """冲时点: at 3-5 month ends, money from a family member, a friend or a company lending it short (过桥, 借款)
    arrives 1-3 days before the month end and leaves 1-5 days after it — back to the same party, or (a third of
    the time) to another, in one or two transfers of together 95-100 % of it. The sum is 3-6 times what the
    account holds at the time (at least 50,000). Drawn with a generator of its own (the older draws stay)."""
    w, c = part.w, part.c
    accounts = part.accounts_with("window_dressing")
    if not accounts:
        return
    rng = np.random.default_rng([w.seed, 7, part.a0])
    in_memos = np.array([c(x) for x in DRESSING_IN_MEMOS], np.int32)
    out_memos = np.array([c(x) for x in DRESSING_OUT_MEMOS], np.int32)
    ev = part.events.arrays()
    for a in accounts:
        mine = (ev["acct"] == a) & (ev["cur"] == 0)
        order = np.argsort(ev["ts"][mine], kind="stable")
        ts, running = ev["ts"][mine][order], np.cumsum(ev["cents"][mine][order])
        opening = max(int(yuan(w.salary[a] * w.opening_share[a])[0]), int(w.floor_cents[a] - running.min(initial=0)))
        parties = [tuple(w.friend[a])] + [tuple(w.family[a, k]) for k in range(int(w.n_family[a]))]
        parties += [tuple(w.client_pool[int(i)]) for i in rng.choice(len(w.client_pool), size=2, replace=False)]
        chosen = np.sort(
            rng.choice(np.arange(1, w.months - 1), size=min(int(rng.integers(3, 6)), w.months - 2), replace=False)
        )
        for m in chosen.tolist():
            end_day = int(w.month_start_day[m + 1]) - 1
            before = int(np.searchsorted(ts, end_day * DAY, side="right")) - 1
            held = opening + (int(running[before]) if before >= 0 else 0)
            cents = int(round_to(max(50_000 * 100, held * rng.uniform(3, 6)), 1000_00)[0])
            source = parties[int(rng.integers(0, len(parties)))]
            back_to = source if rng.random() < 2 / 3 else parties[int(rng.integers(0, len(parties)))]
            t_in = (end_day - int(rng.integers(1, 4))) * DAY + int(tod(rng, 1, 9, 18)[0])
            part.events.add(a, t_in, cents, source[0], source[1], in_memos[rng.integers(0, in_memos.size)], c("网银"))
            total = int(round_to(cents * rng.uniform(0.95, 1.0), 100_00)[0])
            first = total if rng.random() < 0.7 else int(round_to(total * rng.uniform(0.4, 0.7), 100_00)[0])
            pieces = [first] if first == total else [first, total - first]
            for piece in pieces:
                t_out = (end_day + int(rng.integers(1, 6))) * DAY + int(tod(rng, 1, 9, 18)[0])
                memo = out_memos[rng.integers(0, out_memos.size)]
                part.events.add(a, t_out, -piece, back_to[0], back_to[1], memo, c("网银"))
        part.label(a, "window_dressing", chosen)


def plant_second_currency(part: Part) -> None:
    """Ordinary accounts with a second currency: in 2-4 months 购汇 (CNY out, the currency in at the reference
    rate) of 20-50 % of a month's pay, then 2-6 card payments abroad in that currency."""
    w, rng, c = part.w, part.vrng, part.c
    buy, chan = c("购汇"), c("手机银行")
    for a in range(part.a0, part.a1):
        cur = int(w.second_currency[a])
        if not cur:
            continue
        rate = float(RATE_TO_CNY[cur])
        merchants = FOREIGN_MERCHANTS[cur]
        for m in rng.choice(np.arange(w.months), size=int(rng.integers(2, 5)), replace=False):
            t = int(part.ts(int(m), rng.integers(0, 20), tod(rng, 1, 9, 20))[0])
            cny = int(round_to(w.salary[a] * rng.uniform(0.2, 0.5) * 100, 100_00)[0])
            foreign = int(np.rint(cny / rate))
            part.events.add(a, t, -cny, 0, 0, buy, chan)
            part.events.add(a, t + 1, foreign, 0, 0, buy, chan, cur=cur)
            k = int(rng.integers(2, 7))
            pick = rng.integers(0, len(merchants), k)
            median = np.array([merchants[i][1] for i in pick])
            spend = yuan(np.minimum(median * rng.lognormal(0, 0.4, k), foreign / 100 / k))
            names = np.array([c(merchants[i][0]) for i in pick], np.int32)
            when = (t // DAY + rng.integers(1, 8, k)) * DAY + tod(rng, k, 8, 22)
            part.events.add(a, when, -spend, names, 0, c("境外消费"), c("银联"), cur=cur)
