"""Literal-row builders shared by the rule tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl

from liushui.config import Rules, load_rules
from liushui.contracts import ACCOUNTS_REF, CANONICAL_TRANSACTION, RELATED_PARTIES_REF


def txn(
    account: str,
    at: str,
    amount: str,
    counterparty: str | None = None,
    cp_account: str | None = None,
    memo: str | None = None,
    balance: str | None = None,
    currency: str = "CNY",
) -> dict:
    return {
        "account_id": account,
        "booked_at": datetime.fromisoformat(at),
        "amount": Decimal(amount),
        "currency": currency,
        "balance_after": Decimal(balance) if balance is not None else None,
        "counterparty_name": counterparty,
        "counterparty_account": cp_account,
        "description": memo,
    }


def canonical(rows: list[dict]) -> pl.DataFrame:
    """Literal rows -> canonical transactions; txn ids are `<account>-<n>` (n = position, 1-based)."""
    frame = pl.DataFrame(
        [
            {
                **r,
                "txn_id": f"{r['account_id']}-{i}",
                "source_file": "t.csv",
                "source_row": i,
                "batch_id": "b",
                "channel": None,
            }
            for i, r in enumerate(rows, start=1)
        ],
        schema_overrides={"amount": pl.Decimal(18, 2), "balance_after": pl.Decimal(18, 2)},
    )
    return CANONICAL_TRANSACTION.conform(frame).collect()


def accounts(*rows: tuple[str | None, ...]) -> pl.DataFrame:
    """Rows of (account_id, customer_id, holder_name, account_type[, further columns]); columns left out are null."""
    names = ACCOUNTS_REF.names
    padded = [tuple(row) + (None,) * (len(names) - len(row)) for row in rows]
    return ACCOUNTS_REF.conform(pl.DataFrame(padded, schema=names, orient="row")).collect()


def related(*rows: tuple[str, str | None, str | None, str]) -> pl.DataFrame:
    return RELATED_PARTIES_REF.conform(pl.DataFrame(rows, schema=RELATED_PARTIES_REF.names, orient="row")).collect()


def signals(
    rows: list[dict],
    *,
    as_of: date,
    accounts_ref: pl.DataFrame | None = None,
    related_ref: pl.DataFrame | None = None,
    rules: Rules | None = None,
) -> dict[str, pl.DataFrame]:
    from transforms.lenders import load_lender_registry
    from transforms.signals import derive_signals

    return derive_signals(
        canonical(rows).lazy(),
        accounts=(accounts_ref if accounts_ref is not None else ACCOUNTS_REF.empty()).lazy(),
        related_parties=(related_ref if related_ref is not None else RELATED_PARTIES_REF.empty()).lazy(),
        lender_registry=load_lender_registry(),
        rules=rules or load_rules(),
        as_of=as_of,
    ).collect()


def monthly(
    account: str,
    months: list[int],
    amount: str,
    *,
    day: int = 10,
    year: int = 2026,
    counterparty: str = "上海某某科技有限公司",
    memo: str = "代发工资",
) -> list[dict]:
    return [txn(account, f"{year}-{m:02d}-{day:02d} 09:00:00", amount, counterparty, None, memo) for m in months]


def flags_of(result: dict[str, pl.DataFrame], code: str) -> pl.DataFrame:
    return (
        result["risk_flags"].filter(pl.col("flag_code") == code).sort("account_id", "period_start_on", "period_end_on")
    )
