"""The sample generator: determinism, file formats, exact balances and the planted behaviours."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from liushui.contracts import CANONICAL_INPUT_COLUMNS, MONEY
from synthetic.generate import BEHAVIOURS, LENDERS, GeneratedSample, generate_sample

N_ACCOUNTS = 40
MONTHS = 8
END_MONTH = date(2026, 10, 1)
PENALTY_MEMOS = ("逾期罚息", "滞纳金", "违约金")
DISBURSE_MEMOS = {x.disburse_memo: x.key for x in LENDERS if x.disburse_memo}
REPAY_MEMOS = {x.repay_memo: x.key for x in LENDERS}


def _generate(out: Path, seed: int = 7, **kwargs) -> GeneratedSample:
    return generate_sample(out, seed=seed, n_accounts=N_ACCOUNTS, months=MONTHS, end_month=END_MONTH, **kwargs)


def _read_part(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(
        path,
        schema_overrides={c: pl.String for c in CANONICAL_INPUT_COLUMNS} | {"amount": MONEY, "balance_after": MONEY},
    ).with_columns(pl.col("booked_at").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us"))


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
            prev_balance=pl.col("balance_after").shift(1).over("account_id"),
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
    """(account_id, party_account) for declared related parties and the customer's own accounts."""
    accounts = pl.read_csv(sample.accounts_file, infer_schema=False)
    parties = pl.read_csv(sample.related_parties_file, infer_schema=False)
    declared = accounts.join(parties, on="customer_id").select("account_id", "party_account")
    own = accounts.join(accounts, on="customer_id", suffix="_other").filter(
        pl.col("account_id") != pl.col("account_id_other")
    )
    return pl.concat([declared, own.select("account_id", party_account="account_id_other")]).unique()


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
    assert suffixes[:2] == [".csv", ".parquet"]
    for path in [*(p for p in sample.transaction_files if p.suffix == ".csv"), sample.overlap_file]:
        with path.open(encoding="utf-8") as fh:
            assert fh.readline().rstrip("\n") == ",".join(CANONICAL_INPUT_COLUMNS)
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
    assert (txns["currency"] == "CNY").all()
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
    assert (txns["balance_after"] >= 0).all()


def test_overlap_export_repeats_rows_exactly(sample, txns):
    overlap = _read_part(sample.overlap_file)
    assert sample.n_overlap_rows == overlap.height > 0
    assert 2 <= overlap["account_id"].n_unique() <= 3
    columns = list(CANONICAL_INPUT_COLUMNS)
    matched = overlap.join(txns.select(columns), on=columns, how="semi", nulls_equal=True)
    assert matched.height == overlap.height
    months = overlap["booked_at"].dt.date().dt.truncate("1mo").unique().sort().to_list()
    assert months == _all_months(txns)[-2:]


def test_transfers_between_dataset_accounts_have_both_legs(txns):
    ids = txns["account_id"].unique().implode()
    outs = txns.filter((pl.col("amount") < 0) & pl.col("counterparty_account").is_in(ids))
    ins = txns.filter((pl.col("amount") > 0) & pl.col("counterparty_account").is_in(ids))
    assert outs.height > 0 and outs.height == ins.height
    legs = outs.join(
        ins,
        left_on=["counterparty_account", "account_id", (-pl.col("amount"))],
        right_on=["account_id", "counterparty_account", "amount"],
        suffix="_in",
    ).filter(
        (pl.col("booked_at_in") >= pl.col("booked_at"))
        & (pl.col("booked_at_in") - pl.col("booked_at") <= pl.duration(minutes=10))
    )
    assert legs.select(pl.struct("account_id", "booked_at").n_unique()).item() == outs.height


def test_cycles_pass_money_around_different_customers(txns, labels):
    cycle = _labelled(labels, "cycle")
    assert len(cycle) >= 3
    ids = pl.Series(list(cycle)).implode()
    hops = txns.filter(
        pl.col("account_id").is_in(ids) & pl.col("counterparty_account").is_in(ids) & (pl.col("amount") < 0)
    )
    for account, months in cycle.items():
        mine = hops.filter(pl.col("account_id") == account)
        assert set(mine["month_on"]) == months
        assert (mine["amount"] <= -45_000).all() and (mine["amount"] >= -200_000).all()
    customers = txns.filter(pl.col("account_id").is_in(ids)).select("account_id", "customer_id").unique()
    assert customers["customer_id"].n_unique() == len(cycle)


# ---------------------------------------------------------------------------------------------------
# The planted behaviours


def test_every_behaviour_is_planted(labels, txns):
    assert set(labels["behaviour"]) == set(BEHAVIOURS)
    months = set(_all_months(txns))
    assert set(labels["month_on"]) <= months
    per_account = labels.group_by("account_id").agg(pl.col("behaviour").n_unique())
    assert (per_account["behaviour"] == 2).any()
    personal = txns.filter(pl.col("account_type") == "personal")["account_id"].n_unique()
    assert 0.4 <= 1 - per_account.height / personal <= 0.75  # share of normal personal accounts


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
        big = txns.filter((pl.col("account_id") == account) & (pl.col("amount") <= -max(30_000, 3 * typical * 0.95)))
        assert set(big["month_on"]) == labelled
        assert min(labelled) >= _all_months(txns)[4]


def test_related_transfer_heavy(sample, txns, labels):
    related = _related_accounts(sample)
    flagged = txns.join(
        related,
        left_on=["account_id", "counterparty_account"],
        right_on=["account_id", "party_account"],
        how="left",
        coalesce=False,
    ).with_columns(is_related=pl.col("party_account").is_not_null())
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
    # Round trips often go to a related party and come back: those months show a high gross share too.
    others = pl.Series([*heavy, *_labelled(labels, "round_trip")]).implode()
    assert share.filter(~pl.col("account_id").is_in(others))["share"].max() < 0.5


def test_round_trips(txns, labels):
    for account, labelled in _labelled(labels, "round_trip").items():
        mine = txns.filter((pl.col("account_id") == account) & (pl.col("amount").abs() >= 19_600))
        out = mine.filter(pl.col("amount") < 0)
        back = mine.filter(pl.col("amount") > 0)
        pairs = out.join(back, on="counterparty_account", suffix="_back").filter(
            (pl.col("booked_at_back") > pl.col("booked_at"))
            & (pl.col("booked_at_back") - pl.col("booked_at") <= pl.duration(days=6))
            & ((pl.col("amount_back") + pl.col("amount")).abs() <= -pl.col("amount") * 0.02)
        )
        per_month = pairs.group_by("month_on").agg(pl.col("booked_at").n_unique().alias("n"))
        assert set(per_month["month_on"]) == labelled
        assert (per_month["n"] >= 3).all()


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
