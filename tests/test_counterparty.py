"""Counterparty resolution on literal rows: which batch account is on the other side, and how we know."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from liushui.contracts import FX_RATES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import account_owners
from transforms.counterparty import in_cny, mirrored_legs, party_keys, resolved_counterparties

REF = accounts(
    ("A", "CA", "张三", "personal"),
    ("B", "CB", "李四", "personal"),
    ("C", "CC", "王五", "personal"),
).with_columns(
    account_number=pl.Series(["6222020000001234", "6217000000005678", "6228480000009012"]),
    aliases=pl.Series([None, "6217 0000 0000 0001;6217000000000002", None]),
)
NO_RATES = FX_RATES_REF.empty()


def resolved(rows: list[dict], ref: pl.DataFrame = REF, fx: pl.DataFrame = NO_RATES) -> pl.DataFrame:
    t = account_owners(canonical(rows).lazy(), ref.lazy())
    return (
        resolved_counterparties(t, ref.lazy(), fx.lazy())
        .select("txn_id", "counterparty_account_id", "counterparty_resolution")
        .sort("txn_id")
        .collect()
    )


def one(rows: list[dict], ref: pl.DataFrame = REF, txn_id: str = "A-1") -> tuple[str | None, str | None]:
    row = resolved(rows, ref).filter(pl.col("txn_id") == txn_id)
    return row["counterparty_account_id"][0], row["counterparty_resolution"][0]


def test_counterparty_named_by_our_account_id():
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "李四", "B")]) == ("B", "account_id")


def test_counterparty_named_by_a_declared_account_number_or_alias_with_spaces():
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", None, "6217000000005678")]) == ("B", "account_number")
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", None, "6217-0000-0000-0002")]) == ("B", "account_number")


def test_a_number_declared_for_two_accounts_resolves_to_nothing():
    ref = REF.with_columns(aliases=pl.Series([None, "6299000000007777", "6299000000007777"]))
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", None, "6299000000007777")], ref) == (None, None)


def test_masked_number_with_the_holder_name():
    for masked in ("6217****5678", "尾号5678", "*5678", "6217 **** **** 5678"):
        assert one([txn("A", "2026-03-01 10:00:00", "-5000", "李 四", masked)]) == ("B", "masked_number"), masked


def test_masked_number_with_another_name_is_unresolved():
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "王五", "6217****5678")]) == (None, None)


def test_masked_number_whose_digits_fit_two_accounts_of_one_holder_is_unresolved():
    ref = REF.with_columns(account_number=pl.Series(["6222020000001234", "6217000000005678", "6228480000005678"]))
    ref = ref.with_columns(holder_name=pl.Series(["张三", "李四", "李四"]), customer_id=pl.Series(["CA", "CB", "CB"]))
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "李四", "尾号5678")], ref) == (None, None)
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "李四", "6217****5678")], ref) == ("B", "masked_number")


def test_mirrored_leg_resolves_both_sides_of_an_unknown_card():
    rows = [
        txn("A", "2026-03-01 10:00:00", "-5000", "李四", "6200999988887777"),  # a card nobody declared
        txn("B", "2026-03-01 10:03:00", "5000", "张三", "6200111122223333"),
    ]
    out = resolved(rows)
    assert out.rows() == [("A-1", "B", "mirrored_leg"), ("B-2", "A", "mirrored_leg")]
    legs = mirrored_legs(
        resolved_counterparties(account_owners(canonical(rows).lazy(), REF.lazy()), REF.lazy(), NO_RATES.lazy()),
        NO_RATES.lazy(),
    ).collect()
    assert legs.select("out_txn_id", "in_txn_id").rows() == [("A-1", "B-2")]


def test_mirrored_leg_in_two_accounts_is_ambiguous_and_resolves_the_outflow_to_nothing():
    ref = REF.with_columns(holder_name=pl.Series(["张三", "李四", "李四"]))  # two people named 李四
    rows = [
        txn("A", "2026-03-01 10:00:00", "-5000", "李四", "6200999988887777"),
        txn("B", "2026-03-01 10:03:00", "5000", "张三", None),
        txn("C", "2026-03-01 10:04:00", "5000", "张三", None),
    ]
    assert one(rows, ref) == (None, None)


def test_mirrored_leg_across_currencies_needs_a_rate():
    rows = [
        txn("A", "2026-03-01 10:00:00", "-7100", "李四", "6200999988887777"),
        txn("B", "2026-03-01 12:00:00", "995", "张三", None, currency="USD"),  # 7,065 CNY: within 3 %
    ]
    usd = pl.DataFrame(
        {"currency": ["USD"], "rate_to_cny": [7.1], "valid_from": [None]}, schema=FX_RATES_REF.polars_schema
    )
    assert resolved(rows, fx=usd)["counterparty_resolution"].to_list() == ["mirrored_leg", "mirrored_leg"]
    assert resolved(rows)["counterparty_resolution"].to_list() == [None, "holder_name"]


def test_mirrored_leg_too_far_apart_or_of_another_amount_does_not_resolve():
    late = [
        txn("A", "2026-03-01 10:00:00", "-5000", "某人", "6200"),
        txn("B", "2026-03-06 10:00:00", "5000", "张三", "62"),
    ]
    other = [
        txn("A", "2026-03-01 10:00:00", "-5000", "某人", "6200"),
        txn("B", "2026-03-01 10:00:00", "4000", "张三", "62"),
    ]
    assert resolved(late)["counterparty_resolution"].to_list() == [None, None]
    assert resolved(other)["counterparty_resolution"].to_list() == [None, None]


def test_holder_name_only_when_no_counterparty_account_and_a_unique_holder():
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "王五", None)]) == ("C", "holder_name")
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "王五", "6200123")]) == (None, None)
    two = REF.with_columns(holder_name=pl.Series(["张三", "王五", "王五"]))
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "王五", None)], two) == (None, None)


def test_a_row_never_resolves_to_its_own_account():
    assert one([txn("A", "2026-03-01 10:00:00", "-5000", "张三", "6222020000001234")]) == (None, None)


def test_fx_rates_file_is_read_and_a_bad_rate_names_its_row(tmp_path):
    import pytest

    from liushui.config import ConfigError
    from liushui.reference import read_fx_rates

    assert read_fx_rates(tmp_path).height == 0  # optional
    (tmp_path / "fx_rates.csv").write_text("currency,rate_to_cny,valid_from\nusd,7.1,2026-01-01\nEUR,7.8,\n")
    assert read_fx_rates(tmp_path).rows() == [("USD", 7.1, date(2026, 1, 1)), ("EUR", 7.8, None)]
    (tmp_path / "fx_rates.csv").write_text("currency,rate_to_cny\nUSD,7.1\nEUR,abc\n")
    with pytest.raises(ConfigError, match="row 2"):
        read_fx_rates(tmp_path)


def test_rate_applies_from_its_valid_from_date():
    rates = pl.DataFrame(
        {"currency": ["USD", "USD"], "rate_to_cny": [7.0, 7.2], "valid_from": [date(2026, 1, 1), date(2026, 3, 1)]}
    )
    frame = pl.DataFrame(
        {"amount": [100.0, 100.0, 100.0, 100.0], "currency": ["USD", "USD", "CNY", "JPY"]},
    ).with_columns(
        at=pl.Series([datetime(2026, 2, 1), datetime(2026, 3, 2), datetime(2026, 3, 2), datetime(2026, 3, 2)])
    )
    out = in_cny(frame.lazy(), rates.lazy(), amount="amount", currency="currency", at="at", out="cny").collect()
    assert out.sort("at", "currency")["cny"].to_list() == [700.0, 100.0, None, 720.0]


def test_party_keys_make_one_party_of_every_form_a_statement_names_it_by():
    rows = [
        ("李四", "6222020000001234", None),
        ("李四", "6222****1234", None),  # fits the full number of the same name
        ("李四", None, None),  # the name alone: the numbered party
        ("王五", "6217****5678", None),
        ("王五", "尾号5678", None),  # another masked form of the same name, no full number known
        ("赵六", "6222****1234", None),  # the same visible digits as 李四's, another name: another party
        ("钱七", "6228480000009012", "C"),  # resolved: the account
        ("钱七", "6228****9012", None),
        (None, "尾号3456", None),  # a masked number without a name: only itself
        (None, None, None),
    ]
    frame = pl.LazyFrame(
        [
            {
                "txn_id": f"t{i}",
                "account_id": "A",
                "counterparty_name": n,
                "counterparty_account": a,
                "counterparty_account_id": r,
            }
            for i, (n, a, r) in enumerate(rows)
        ],
        schema={
            "txn_id": pl.String,
            "account_id": pl.String,
            "counterparty_name": pl.String,
            "counterparty_account": pl.String,
            "counterparty_account_id": pl.String,
        },
    )
    keys = party_keys(frame, within=["account_id"]).sort("txn_id").collect()["party_key"].to_list()
    assert keys == [
        "num:6222020000001234",
        "num:6222020000001234",
        "num:6222020000001234",
        "masked:王五:678",
        "masked:王五:678",
        "masked:赵六:234",
        "acct:C",
        "acct:C",
        "num:尾号3456",
        None,
    ]
