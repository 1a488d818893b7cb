"""The sample generator: determinism, file formats, exact balances, the planted behaviours and the variety
statements carry (masked or missing counterparty numbers, quoted CSV, second currencies, low pay, overdrafts)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from liushui.contracts import CANONICAL_INPUT_COLUMNS, MONEY
from synthetic.generate import BEHAVIOURS, LENDERS, GeneratedSample, generate_sample

N_ACCOUNTS = 70
MONTHS = 8
END_MONTH = date(2026, 10, 1)
PENALTY_MEMOS = ("逾期罚息", "滞纳金", "违约金")
DISBURSE_MEMOS = {x.disburse_memo: x.key for x in LENDERS if x.disburse_memo}
REPAY_MEMOS = {x.repay_memo: x.key for x in LENDERS}
RATES = {"CNY": 1.0, "USD": 7.1, "HKD": 0.91}
MASKED = r"^\d{4}\*{4}\d{4}$|^尾号\d{4}$"


def _is_quoted(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        return fh.readline().startswith('"account_id"')


def _generate(out: Path, seed: int = 7, **kwargs) -> GeneratedSample:
    return generate_sample(out, seed=seed, n_accounts=N_ACCOUNTS, months=MONTHS, end_month=END_MONTH, **kwargs)


def _read_part(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return (
        pl.read_csv(
            path,
            schema_overrides={c: pl.String for c in CANONICAL_INPUT_COLUMNS}
            | {"amount": MONEY, "balance_after": MONEY},
        )
        .with_columns(
            pl.col(pl.String).replace("", None),  # a quoted file's "" is an empty cell
        )
        .with_columns(pl.col("booked_at").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us"))
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> GeneratedSample:
    return _generate(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def txns(sample) -> pl.DataFrame:
    """All part rows, in statement order, with month, previous balance and account metadata."""
    frame = pl.concat([_read_part(p) for p in sample.transaction_files])
    accounts = pl.read_csv(sample.accounts_file, infer_schema=False)
    return (
        frame.join(accounts, on="account_id", how="left")
        .sort("account_id", "booked_at")
        .with_columns(
            month_on=pl.col("booked_at").dt.date().dt.truncate("1mo"),
            prev_balance=pl.col("balance_after").shift(1).over("account_id", "currency"),
            cny=pl.col("amount").cast(pl.Float64) * pl.col("currency").replace_strict(RATES, return_dtype=pl.Float64),
        )
    )


@pytest.fixture(scope="module")
def labels(sample) -> pl.DataFrame:
    return pl.read_csv(sample.labels_file, schema_overrides={"account_id": pl.String, "month_on": pl.Date})


def _labelled(labels: pl.DataFrame, behaviour: str) -> dict[str, set[date]]:
    found: dict[str, set[date]] = {}
    for row in labels.filter(pl.col("behaviour") == behaviour).iter_rows(named=True):
        found.setdefault(row["account_id"], set()).add(row["month_on"])
    return found


def _monthly(txns: pl.DataFrame, account: str, predicate: pl.Expr, value: pl.Expr) -> dict[date, float]:
    rows = txns.filter((pl.col("account_id") == account) & predicate).group_by("month_on").agg(value.sum())
    return {m: float(v) for m, v in rows.iter_rows()}


def _all_months(txns: pl.DataFrame) -> list[date]:
    return sorted(txns["month_on"].unique().to_list())


def _related_accounts(sample: GeneratedSample) -> pl.DataFrame:
    """(account_id, party_account, party_name) for declared related parties and the customer's own accounts."""
    accounts = pl.read_csv(sample.accounts_file, infer_schema=False)
    parties = pl.read_csv(sample.related_parties_file, infer_schema=False)
    declared = accounts.join(parties, on="customer_id").select("account_id", "party_account", "party_name")
    own = accounts.join(accounts, on="customer_id", suffix="_other").filter(
        pl.col("account_id") != pl.col("account_id_other")
    )
    own = own.select("account_id", party_account="account_id_other", party_name="holder_name")
    return pl.concat([declared, own]).unique()


# ---------------------------------------------------------------------------------------------------
# Files and determinism


def test_same_seed_gives_identical_bytes(sample, tmp_path):
    again = _generate(tmp_path / "again")
    ours = sorted(p.relative_to(sample.out_dir) for p in sample.out_dir.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(again.out_dir) for p in again.out_dir.rglob("*") if p.is_file())
    assert ours == theirs
    for rel in ours:
        assert (sample.out_dir / rel).read_bytes() == (again.out_dir / rel).read_bytes(), rel


def test_different_seed_gives_different_data(sample, tmp_path):
    other = _generate(tmp_path / "other", seed=8)
    for mine, theirs in zip(sample.transaction_files, other.transaction_files, strict=False):
        assert mine.read_bytes() != theirs.read_bytes()
    assert sample.labels_file.read_bytes() != other.labels_file.read_bytes()


def test_both_formats_split_the_accounts_and_csv_header_is_canonical(sample):
    suffixes = [p.suffix for p in sample.transaction_files]
    assert suffixes == [".csv", ".parquet", ".csv"]
    csvs = [p for p in sample.transaction_files if p.suffix == ".csv"]
    plain = [p for p in [*csvs, sample.overlap_file] if not _is_quoted(p)]
    quoted = [p for p in csvs if _is_quoted(p)]
    assert len(plain) >= 2 and quoted
    for path in plain:
        with path.open(encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == ",".join(CANONICAL_INPUT_COLUMNS)
    for path in quoted:
        with path.open(encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == ",".join(f'"{c}"' for c in CANONICAL_INPUT_COLUMNS)
            line = fh.readline().rstrip("\n")
        assert line.startswith('"') and line.endswith('"') and ',"",' in line  # every cell quoted, empty as ""
    per_file = [set(_read_part(p)["account_id"].unique()) for p in sample.transaction_files]
    assert all(per_file) and not per_file[0] & per_file[1]
    assert sum(len(s) for s in per_file) == sample.n_accounts


def test_parquet_parts_have_contract_types(sample):
    path = next(p for p in sample.transaction_files if p.suffix == ".parquet")
    schema = pl.read_parquet_schema(path)
    assert list(schema) == list(CANONICAL_INPUT_COLUMNS)
    assert schema["amount"] == pl.Decimal(18, 2) and schema["balance_after"] == pl.Decimal(18, 2)
    assert schema["booked_at"] == pl.Datetime("us")
    assert all(
        schema[c] == pl.String for c in CANONICAL_INPUT_COLUMNS if c not in ("amount", "balance_after", "booked_at")
    )
    assert str(pq.read_schema(path).field("amount").type) == "decimal128(18, 2)"


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_single_format(tmp_path, file_format):
    result = _generate(tmp_path, file_format=file_format)
    assert {p.suffix for p in result.transaction_files} == {f".{file_format}"}
    assert result.overlap_file.suffix == ".csv"


def test_target_rows_scales_the_dataset(tmp_path):
    result = generate_sample(tmp_path, months=6, target_rows=30_000)
    assert 0.8 * 30_000 <= result.n_rows <= 1.2 * 30_000


@pytest.mark.parametrize("kwargs", [{"file_format": "xlsx"}, {"months": 3}, {"n_accounts": 5}, {"target_rows": 0}])
def test_invalid_arguments_are_rejected(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_sample(tmp_path, **kwargs)


def test_reference_files(sample, txns):
    accounts = pl.read_csv(sample.accounts_file, infer_schema=False)
    assert accounts.columns == ["account_id", "customer_id", "holder_name", "account_type"]
    assert accounts["account_id"].is_unique().all()
    assert accounts["account_id"].str.len_chars().is_between(16, 19).all()
    assert accounts["account_id"].str.contains(r"^\d+$").all()
    assert set(accounts["account_type"]) == {"personal", "business"}
    assert accounts.group_by("customer_id").len()["len"].max() == 2
    assert set(txns["account_id"]) == set(accounts["account_id"])
    parties = pl.read_csv(sample.related_parties_file, infer_schema=False)
    assert parties.columns == ["customer_id", "party_name", "party_account", "relation"]
    assert {"spouse", "family", "self", "shareholder", "legal_representative"} <= set(parties["relation"])


# ---------------------------------------------------------------------------------------------------
# Row-level invariants


def test_rows_are_well_formed(txns):
    assert (txns["amount"] != 0).all()
    assert "CNY" in set(txns["currency"]) and set(txns["currency"]) <= {"CNY", "USD", "HKD"}
    assert txns.filter(pl.col("currency") != "CNY").height < 0.01 * txns.height  # a second currency, CNY main
    assert txns["txn_id"].is_null().all()
    assert txns.select(pl.struct("account_id", "booked_at").is_unique().all()).item()
    hours = txns["booked_at"].dt.hour()
    assert hours.min() >= 7 and hours.max() <= 23
    months = _all_months(txns)
    assert len(months) == MONTHS and months[-1] == END_MONTH


def test_balance_is_continuous_except_in_the_labelled_break_month(txns, labels):
    breaks = txns.filter(
        pl.col("prev_balance").is_not_null() & (pl.col("prev_balance") + pl.col("amount") != pl.col("balance_after"))
    )
    expected = _labelled(labels, "balance_break")
    assert expected
    found: dict[str, set[date]] = {}
    for row in breaks.iter_rows(named=True):
        found.setdefault(row["account_id"], set()).add(row["month_on"])
    assert found == expected
    assert breaks.height == len(expected)
    negative = txns.filter(pl.col("balance_after") < 0)
    assert set(negative["currency"]) == {"CNY"}
    assert set(negative["account_id"]) == set(_labelled(labels, "overdrawn"))


def test_overlap_export_repeats_rows_exactly(sample, txns):
    overlap = _read_part(sample.overlap_file)
    assert sample.n_overlap_rows == overlap.height > 0
    assert 2 <= overlap["account_id"].n_unique() <= 3
    columns = list(CANONICAL_INPUT_COLUMNS)
    matched = overlap.join(txns.select(columns), on=columns, how="semi", nulls_equal=True)
    assert matched.height == overlap.height
    months = overlap["booked_at"].dt.date().dt.truncate("1mo").unique().sort().to_list()
    assert months == _all_months(txns)[-2:]


def _legs(txns: pl.DataFrame, sign: int) -> pl.DataFrame:
    """Transfers whose counterparty is a batch holder (by name: the number may be masked or missing)."""
    holders = txns["holder_name"].unique().implode()
    return txns.filter((pl.col("amount") * sign > 0) & pl.col("counterparty_name").is_in(holders))


def _number_fits(number: pl.Expr, account: pl.Expr) -> pl.Expr:
    """A counterparty number as shown (full, masked, 尾号, or none) fits an account id."""
    return (
        number.is_null()
        | (number == account)
        | (number.str.contains(MASKED) & (number.str.slice(-4) == account.str.slice(-4)))
    )


def test_transfers_between_dataset_accounts_have_both_legs(txns):
    outs, ins = _legs(txns, -1), _legs(txns, 1)
    assert outs.height > 0 and outs.height == ins.height
    legs = outs.join(ins, left_on="counterparty_name", right_on="holder_name", suffix="_in").filter(
        (pl.col("counterparty_name_in") == pl.col("holder_name"))
        & (pl.col("booked_at_in") >= pl.col("booked_at"))
        & (pl.col("booked_at_in") - pl.col("booked_at") <= pl.duration(minutes=10))
        & ((pl.col("cny_in") + pl.col("cny")).abs() <= 0.005 * pl.col("cny_in").abs() + 0.01)
        & _number_fits(pl.col("counterparty_account"), pl.col("account_id_in"))
        & _number_fits(pl.col("counterparty_account_in"), pl.col("account_id"))
    )
    assert legs.select(pl.struct("account_id", "booked_at").n_unique()).item() == outs.height
    assert legs.select(pl.struct("account_id_in", "booked_at_in").n_unique()).item() == ins.height


def _cycle_hops(txns: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    cycle = _labelled(labels, "cycle")
    ids = pl.Series(list(cycle)).implode()
    names = txns.filter(pl.col("account_id").is_in(ids))["holder_name"].unique().implode()
    return txns.filter(
        pl.col("account_id").is_in(ids)
        & pl.col("counterparty_name").is_in(names)
        & (pl.col("counterparty_name") != pl.col("holder_name"))  # not the customer's own other account
    )


def test_cycles_pass_money_around_different_customers(txns, labels):
    cycle = _labelled(labels, "cycle")
    assert len(cycle) >= 8
    hops = _cycle_hops(txns, labels)
    for account, months in cycle.items():
        mine = hops.filter(pl.col("account_id") == account)
        assert set(mine["month_on"]) == months
    outs = hops.filter(pl.col("amount") < 0)
    assert (outs["cny"] >= -200_000 * 1.01).all()
    assert (outs["cny"] > -10_000).any() and (outs["cny"] < -45_000).any()  # small cycles and large ones
    assert set(hops["currency"]) >= {"CNY"} and len(set(hops["currency"])) >= 2  # some hops change currency
    assert hops["counterparty_account"].str.contains(MASKED).any() or hops["counterparty_account"].is_null().any()
    customers = txns.filter(pl.col("account_id").is_in(pl.Series(list(cycle)).implode()))
    assert customers["customer_id"].n_unique() == len(cycle)


def test_long_cycles_lose_a_fee_per_hop_and_span_up_to_weeks(txns, labels):
    hops = _cycle_hops(txns, labels).sort("booked_at")
    outs = hops.filter(pl.col("amount") < 0)
    # Each holder passes on less than it received, by 0.1-2 % (the receipt just before, in CNY).
    passed = outs.join_asof(
        hops.filter(pl.col("amount") > 0).select("account_id", "booked_at", received="cny"),
        on="booked_at",
        by="account_id",
        strategy="backward",
        check_sortedness=False,  # sorted by time above; per holder the order holds
    ).filter(
        pl.col("received").is_not_null() & (pl.col("booked_at").dt.date().dt.truncate("1mo") > min(txns["month_on"]))
    )
    ratio = -pl.col("cny") / pl.col("received")
    kept = passed.filter(ratio.is_between(0.97, 1.0))
    assert kept.height >= 5
    assert kept.select(ratio.is_between(0.979, 0.9995).all()).item()
    # Follow each holder's payee around: some chains have 5 or more holders.
    payee = dict(outs.select("holder_name", "counterparty_name").unique().iter_rows())
    lengths = []
    for start in payee:
        at, seen = payee[start], [start]
        while at != start and at not in seen and at in payee:
            seen.append(at)
            at = payee[at]
        lengths.append(len(seen))
    assert min(lengths) >= 3 and max(lengths) >= 5


# ---------------------------------------------------------------------------------------------------
# The planted behaviours


def test_every_behaviour_is_planted(labels, txns):
    assert set(labels["behaviour"]) == set(BEHAVIOURS)
    months = set(_all_months(txns))
    assert set(labels["month_on"]) <= months
    per_account = labels.group_by("account_id").agg(pl.col("behaviour").n_unique())
    assert (per_account["behaviour"] == 2).any()
    personal = txns.filter(pl.col("account_type") == "personal")["account_id"].n_unique()
    # share of normal personal accounts: every behaviour takes at least 2 accounts, so a sample this small
    # (68 personal accounts, 20 behaviours) keeps about a fifth of them ordinary
    assert 0.2 <= 1 - per_account.height / personal <= 0.75


def test_income_volatile_swings(txns, labels):
    accounts = _labelled(labels, "income_volatile")
    months = _all_months(txns)
    for account, labelled in accounts.items():
        assert labelled == set(months[2:])
        assert not txns.filter((pl.col("account_id") == account) & (pl.col("description") == "代发工资")).height
        income = _monthly(
            txns,
            account,
            pl.col("description").is_in(["劳务费", "经营收入", "项目款", "设计费", "服务费"]),
            pl.col("amount"),
        )
        series = np.array([income.get(m, 0.0) for m in months])
        for start in range(len(months) - 5):
            window = series[start : start + 6]
            assert window.std() / window.mean() > 0.8


def test_large_outflow(txns, labels):
    for account, labelled in _labelled(labels, "large_outflow").items():
        salary = txns.filter((pl.col("account_id") == account) & (pl.col("description") == "代发工资"))
        typical = float(salary["amount"].median())
        floor = 3 * typical * 0.95 if typical < 5_000 else max(30_000, 3 * typical * 0.95)  # low pay: no floor
        big = txns.filter((pl.col("account_id") == account) & (pl.col("amount") <= -floor))
        assert set(big["month_on"]) == labelled
        assert min(labelled) >= _all_months(txns)[4]


def test_related_transfer_heavy(sample, txns, labels):
    related = _related_accounts(sample)
    rows = txns.with_row_index("row")
    matched = rows.join(related, on="account_id").filter(
        (pl.col("counterparty_name") == pl.col("party_name"))
        & _number_fits(pl.col("counterparty_account"), pl.col("party_account"))
    )
    flagged = rows.with_columns(is_related=pl.col("row").is_in(matched["row"].implode()))
    share = (
        flagged.filter(pl.col("amount") < 0)
        .group_by("account_id", "month_on")
        .agg(
            related_out=(-pl.col("amount")).filter("is_related").sum(),
            related_count=pl.col("is_related").sum(),
            outflow=(-pl.col("amount")).sum(),
        )
        .with_columns(share=pl.col("related_out") / pl.col("outflow"))
    )
    heavy = _labelled(labels, "related_transfer_heavy")
    for account, labelled in heavy.items():
        assert len(labelled) >= 3
        mine = share.filter(pl.col("account_id") == account)
        hot = mine.filter(pl.col("share") >= 0.6)
        assert set(hot["month_on"]) == labelled
        assert (hot["related_count"] >= 4).all()
    # Round trips and window dressing often go to a related party and come back: those months show a high gross
    # share too (in one or two transfers, below RELATED_TRANSFER_HEAVY's count).
    others = pl.Series([*heavy, *_labelled(labels, "round_trip"), *_labelled(labels, "window_dressing")]).implode()
    assert share.filter(~pl.col("account_id").is_in(others))["share"].max() < 0.5


def test_round_trips_go_both_ways(txns, labels):
    directions = set()
    for account, labelled in _labelled(labels, "round_trip").items():
        mine = txns.filter((pl.col("account_id") == account) & (pl.col("amount").abs() >= 19_600))
        pairs = mine.join(mine, on="counterparty_name", suffix="_back").filter(
            (pl.col("booked_at_back") > pl.col("booked_at"))
            & (pl.col("booked_at_back") - pl.col("booked_at") <= pl.duration(days=6))
            & (pl.col("amount").sign() != pl.col("amount_back").sign())
            & ((pl.col("amount_back") + pl.col("amount")).abs() <= pl.col("amount").abs() * 0.02)
        )
        per_month = pairs.group_by("month_on").agg(pl.col("booked_at").n_unique().alias("n"))
        assert set(per_month["month_on"]) == labelled
        assert (per_month["n"] >= 3).all()
        directions |= set(pairs["amount"].sign().to_list())
    assert directions == {-1, 1}  # out-then-in and in-then-out


def _lender_rows(txns: pl.DataFrame) -> pl.DataFrame:
    return txns.with_columns(
        disbursed=pl.col("description").replace_strict(DISBURSE_MEMOS, default=None),
        repaid=pl.col("description").replace_strict(REPAY_MEMOS, default=None),
    )


def test_multi_lender_labels_follow_the_90_day_window(txns, labels):
    rows = _lender_rows(txns).filter(pl.col("disbursed").is_not_null())
    months = _all_months(txns)
    for account, labelled in _labelled(labels, "multi_lender").items():
        mine = rows.filter(pl.col("account_id") == account)
        expected = set()
        for m in months:
            end = pl.Series([m]).dt.offset_by("1mo").item()
            window = mine.filter(
                (pl.col("booked_at").dt.date() < end) & (pl.col("booked_at").dt.date() >= end - np.timedelta64(90, "D"))
            )
            if window["disbursed"].n_unique() >= 4:
                expected.add(m)
        assert labelled == expected and expected


def test_borrow_to_repay_pairs(txns, labels):
    rows = _lender_rows(txns)
    for account, labelled in _labelled(labels, "borrow_to_repay").items():
        mine = rows.filter(pl.col("account_id") == account)
        disb = mine.filter(pl.col("disbursed").is_not_null()).select("booked_at", "disbursed", "amount")
        repay = mine.filter(pl.col("repaid").is_not_null()).select("booked_at", "repaid", "amount", "month_on")
        pairs = disb.join(repay, how="cross", suffix="_r").filter(
            (pl.col("disbursed") != pl.col("repaid"))
            & ((pl.col("booked_at_r").dt.date() - pl.col("booked_at").dt.date()).dt.total_days().is_between(1, 7))
            & ((-pl.col("amount_r") / pl.col("amount")).cast(pl.Float64).is_between(0.85, 1.15))
        )
        assert pairs.height >= 2
        assert set(pairs["month_on"]) == labelled
        assert mine["disbursed"].drop_nulls().n_unique() <= 3


def test_overdue_penalties_only_in_labelled_months(txns, labels):
    penalties = txns.filter(pl.col("description").is_in(PENALTY_MEMOS))
    failed = txns.filter(pl.col("description").str.contains("扣款失败"))
    overdue = _labelled(labels, "overdue")
    assert set(penalties["account_id"]) == set(overdue) == set(failed["account_id"])
    for account, labelled in overdue.items():
        assert set(penalties.filter(pl.col("account_id") == account)["month_on"]) == labelled
        assert set(failed.filter(pl.col("account_id") == account)["month_on"]) == labelled
    assert (failed["amount"] > 0).all()


def test_debt_burden_high(txns, labels):
    rows = _lender_rows(txns)
    for account, labelled in _labelled(labels, "debt_burden_high").items():
        assert len(labelled) >= 3
        mine = rows.filter(pl.col("account_id") == account)
        income = _monthly(txns, account, pl.col("description") == "代发工资", pl.col("amount"))
        repaid = _monthly(mine, account, pl.col("repaid").is_not_null(), -pl.col("amount"))
        heavy = {m for m, v in repaid.items() if v > 0.6 * income[m]}
        assert heavy == labelled


def test_commingling(txns, labels):
    company = pl.col("counterparty_name").str.contains("(商贸|贸易)有限公司$")
    for account, labelled in _labelled(labels, "commingling").items():
        receipts = (
            txns.filter(
                (pl.col("account_id") == account) & (pl.col("amount") > 0) & company & (pl.col("description") == "货款")
            )
            .group_by("month_on")
            .len()
        )
        busy = set(receipts.filter(pl.col("len") >= 8)["month_on"])
        assert busy == labelled == set(receipts["month_on"])


def test_normal_personal_accounts_stay_under_the_thresholds(txns, labels):
    normal = txns.filter(
        (pl.col("account_type") == "personal") & ~pl.col("account_id").is_in(labels["account_id"].implode())
    )
    assert normal["account_id"].n_unique() >= 15
    rows = _lender_rows(normal)
    per_account = rows.group_by("account_id").agg(
        salary=pl.col("amount").filter(pl.col("description") == "代发工资").median(),
        salary_cv=(
            pl.col("amount").filter(pl.col("description") == "代发工资").cast(pl.Float64).std()
            / pl.col("amount").filter(pl.col("description") == "代发工资").cast(pl.Float64).mean()
        ),
        biggest_out=-pl.col("amount").min(),
        lenders=pl.concat_list(pl.col("disbursed"), pl.col("repaid")).explode().drop_nulls().n_unique(),
        penalties=pl.col("description").is_in(PENALTY_MEMOS).sum(),
        company_receipts=(pl.col("description") == "货款").sum(),
    )
    assert (per_account["biggest_out"] < 2 * per_account["salary"]).all()
    assert (per_account["salary_cv"] < 0.1).all()
    assert (per_account["lenders"] <= 1).all()
    assert (per_account["penalties"] == 0).all() and (per_account["company_receipts"] == 0).all()
    monthly = rows.group_by("account_id", "month_on").agg(
        salary=pl.col("amount").filter(pl.col("description") == "代发工资").sum(),
        repaid=-pl.col("amount").filter(pl.col("repaid").is_not_null() | (pl.col("description") == "信用卡还款")).sum(),
        txn_count=pl.len(),
    )
    assert (monthly["repaid"] < 0.3 * monthly["salary"]).all()
    assert monthly["txn_count"].is_between(25, 150).all()
    assert 40 <= monthly["txn_count"].mean() <= 120


# ---------------------------------------------------------------------------------------------------
# The variety statements carry


def test_counterparty_numbers_are_masked_or_missing_on_planted_and_ordinary_rows(txns, labels):
    persons = pl.col("counterparty_name").str.len_chars() <= 3  # a personal name, not a company or merchant
    shown = txns.filter(persons & (pl.col("amount").abs() > 0))
    star = shown.filter(pl.col("counterparty_account").str.contains(r"^\d{4}\*{4}\d{4}$"))
    tail = shown.filter(pl.col("counterparty_account").str.contains(r"^尾号\d{4}$"))
    missing = shown.filter(pl.col("counterparty_account").is_null())
    assert star.height and tail.height and missing.height
    ordinary = ~pl.col("account_id").is_in(labels["account_id"].implode()) & (pl.col("account_type") == "personal")
    assert star.filter(ordinary).height and tail.filter(ordinary).height and missing.filter(ordinary).height
    cycle_legs = _cycle_hops(txns, labels)
    hidden = cycle_legs["counterparty_account"].is_null() | cycle_legs["counterparty_account"].str.contains(MASKED)
    assert hidden.any() and not hidden.all()
    companies = txns.filter(pl.col("counterparty_name").str.ends_with("有限公司"))
    assert not companies["counterparty_account"].str.contains(MASKED).any()


def test_fx_rates_are_written_for_the_currencies_used(sample, txns):
    rates = pl.read_csv(sample.fx_rates_file, infer_schema=False)
    assert rates.columns == ["currency", "rate_to_cny"]
    assert dict(rates.iter_rows()) == {"CNY": "1.0000", "USD": "7.1000", "HKD": "0.9100"}
    assert set(txns["currency"]) <= set(rates["currency"])


def test_overdrawn_accounts_dip_below_zero_on_a_few_days_without_penalties(txns, labels):
    overdrawn = _labelled(labels, "overdrawn")
    assert overdrawn
    for account, labelled in overdrawn.items():
        mine = txns.filter(pl.col("account_id") == account)
        negative = mine.filter(pl.col("balance_after") < 0)
        assert set(negative["month_on"]) == labelled
        assert 1 <= negative["booked_at"].dt.date().n_unique() <= 25
        assert not mine["description"].is_in(PENALTY_MEMOS).any()
        assert not mine["description"].str.contains("扣款失败").any()
    assert not set(overdrawn) & set(_labelled(labels, "overdue"))


def test_pass_through_money_leaves_within_days(txns, labels):
    for account, labelled in _labelled(labels, "pass_through").items():
        mine = txns.filter((pl.col("account_id") == account) & pl.col("month_on").is_in(list(labelled)))
        big_in = mine.filter((pl.col("amount") >= 10_000) & (pl.col("description") != "代发工资"))
        assert big_in.height >= 3 * len(labelled)
        for row in big_in.iter_rows(named=True):
            later = mine.filter(
                (pl.col("amount") < 0)
                & (pl.col("booked_at") > row["booked_at"])
                & (pl.col("booked_at") <= row["booked_at"] + pl.duration(days=4))
                & (pl.col("counterparty_name") != row["counterparty_name"])
            )
            assert -later["amount"].sum() >= float(row["amount"]) * 0.9


@pytest.mark.parametrize(("behaviour", "sign"), [("fan_in", 1), ("fan_out", -1)])
def test_fan_in_and_fan_out_reach_six_parties_within_three_days(txns, labels, behaviour, sign):
    accounts = _labelled(labels, behaviour)
    assert accounts
    for account, labelled in accounts.items():
        transfers = pl.col("channel").is_in(["手机银行", "网银"])  # not card spending at merchants
        mine = txns.filter((pl.col("account_id") == account) & (pl.col("amount") * sign > 0) & transfers)
        mine = mine.sort("booked_at")
        windows = mine.rolling("booked_at", period="3d").agg(parties=pl.col("counterparty_name").n_unique())
        busy = mine.with_columns(windows["parties"]).filter(pl.col("parties") >= 6)
        assert set(busy["month_on"]) <= labelled and busy.height


def test_ordinary_accounts_include_low_pay_and_a_second_currency(txns, labels):
    ordinary = txns.filter(
        (pl.col("account_type") == "personal") & ~pl.col("account_id").is_in(labels["account_id"].implode())
    )
    pay = ordinary.filter(pl.col("description") == "代发工资").group_by("account_id").agg(pl.col("amount").median())
    assert (pay["amount"] < 4_300).any() and (pay["amount"] > 5_000).any()
    foreign = ordinary.filter(pl.col("currency") != "CNY")
    assert foreign["account_id"].n_unique() >= 1
    assert set(foreign["description"]) == {"购汇", "境外消费"}


def test_gather_scatter_hubs_gather_from_five_and_pay_most_on_to_four_others(txns, labels):
    hubs = _labelled(labels, "gather_scatter")
    assert hubs
    assert not set(hubs) & set(labels.filter(pl.col("behaviour") != "gather_scatter")["account_id"])
    for account, labelled in hubs.items():
        mine = txns.filter((pl.col("account_id") == account) & (pl.col("channel") == "手机银行"))
        ins = mine.filter((pl.col("amount") >= 1_000) & pl.col("counterparty_name").is_not_null()).sort("booked_at")
        windows = ins.rolling("booked_at", period="3d").agg(
            senders=pl.col("counterparty_name").unique(), gathered=pl.col("cny").sum()
        )
        busy = ins.with_columns(windows["senders"], windows["gathered"]).filter(pl.col("senders").list.len() >= 5)
        assert set(busy["month_on"]) == labelled
        for row in busy.unique("month_on", keep="last").iter_rows(named=True):
            after = mine.filter(
                (pl.col("amount") < 0)
                & (pl.col("booked_at") > row["booked_at"])
                & (pl.col("booked_at") <= row["booked_at"] + pl.duration(days=5))
                & ~pl.col("counterparty_name").is_in(row["senders"])
            )
            assert after["counterparty_name"].n_unique() >= 4
            assert -after["cny"].sum() >= 0.74 * row["gathered"]


def test_window_dressing_parks_money_over_month_ends_and_ordinary_pay_arrives_on_the_last_day(txns, labels):
    dressed = _labelled(labels, "window_dressing")
    assert dressed
    day = pl.col("booked_at").dt.date()
    for account, labelled in dressed.items():
        assert len(labelled) >= 3
        mine = txns.filter((pl.col("account_id") == account) & (pl.col("currency") == "CNY"))
        for month_on in labelled:
            end = pl.Series([month_on]).dt.month_end()[0]
            pushed = mine.filter(
                (pl.col("amount") >= 50_000) & day.is_between(end - timedelta(days=3), end - timedelta(days=1))
            )
            assert pushed.height == 1, (account, end)
            left = mine.filter(
                (pl.col("amount") <= -0.2 * float(pushed["amount"][0]))
                & day.is_between(end + timedelta(days=1), end + timedelta(days=5))
            )
            assert 0.95 * float(pushed["amount"][0]) <= -float(left["amount"].sum()) <= float(pushed["amount"][0])
            held = mine.filter(day <= end - timedelta(days=4))["balance_after"].tail(1)
            assert float(pushed["amount"][0]) >= 2 * float(held[0])  # the month end holds >= 3 x what it did
    ordinary = txns.filter(
        (pl.col("account_type") == "personal")
        & ~pl.col("account_id").is_in(labels["account_id"].implode())
        & (pl.col("description") == "代发工资")
    )
    on_last_day = ordinary.group_by("account_id").agg((day == day.dt.month_end()).all().alias("last_day"))
    assert on_last_day["last_day"].any() and not on_last_day["last_day"].all()
