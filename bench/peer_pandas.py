"""Peer (b): the core features with pandas, as most data teams would write them: read_csv / read_parquet
with the pyarrow engine, concat, drop_duplicates, merges, str.contains, groupby, rolling; results
written to a DuckDB file. Amounts are float64 (the usual pandas habit; liushui keeps exact decimals).
Run as `python -m bench.peer_pandas DATA_DIR OUT_DB`; prints a JSON line of timings."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.patterns import REFUND, REPAY_ONLY, lender_patterns
from liushui.contracts import CANONICAL_INPUT_COLUMNS

COLS = list(CANONICAL_INPUT_COLUMNS)
TEXT = {
    c: str
    for c in ("account_id", "txn_id", "currency", "counterparty_name", "counterparty_account", "description", "channel")
}


def read(data: Path) -> pd.DataFrame:
    inbox = data / "inbox"
    frames = []
    for p in sorted(inbox.glob("*.csv")):
        f = pd.read_csv(p, engine="pyarrow", dtype=TEXT)
        f["booked_at"] = pd.to_datetime(f["booked_at"], format="%Y-%m-%d %H:%M:%S")
        frames.append(f)
    for p in sorted(inbox.glob("*.parquet")):
        f = pd.read_parquet(p, engine="pyarrow")
        f["amount"] = f["amount"].astype("float64")
        f["balance_after"] = f["balance_after"].astype("float64")
        frames.append(f)
    df = pd.concat([f[COLS] for f in frames], ignore_index=True)
    df["amount"] = df["amount"].astype("float64")
    return df.drop_duplicates(
        subset=["account_id", "booked_at", "amount", "counterparty_name", "counterparty_account", "description"],
        ignore_index=True,
    )


def features(df: pd.DataFrame, data: Path) -> dict[str, pd.DataFrame]:
    accounts = pd.read_csv(data / "reference" / "accounts.csv", dtype=str)
    related = pd.read_csv(data / "reference" / "related_parties.csv", dtype=str)
    df = df.merge(accounts[["account_id", "customer_id", "holder_name"]], on="account_id", how="left")
    df["customer_id"] = df["customer_id"].fillna(df["account_id"])
    own = accounts[["account_id", "customer_id"]].rename(
        columns={"account_id": "counterparty_account", "customer_id": "_cp_customer"}
    )
    df = df.merge(own, on="counterparty_account", how="left")
    df["is_own"] = ((df["_cp_customer"] == df["customer_id"]) & (df["counterparty_account"] != df["account_id"])) | (
        df["counterparty_name"].notna() & (df["counterparty_name"] == df["holder_name"])
    )
    by_acct = related.dropna(subset=["party_account"])[["customer_id", "party_account"]].drop_duplicates()
    by_acct["_rel_a"] = True
    by_name = related.dropna(subset=["party_name"])[["customer_id", "party_name"]].drop_duplicates()
    by_name["_rel_n"] = True
    df = df.merge(
        by_acct, left_on=["customer_id", "counterparty_account"], right_on=["customer_id", "party_account"], how="left"
    ).merge(by_name, left_on=["customer_id", "counterparty_name"], right_on=["customer_id", "party_name"], how="left")
    df["is_related"] = df["_rel_a"].fillna(False).astype(bool) | df["_rel_n"].fillna(False).astype(bool)
    df = df.drop(columns=["_cp_customer", "party_account", "party_name", "_rel_a", "_rel_n"])
    cp, ds = lender_patterns()
    desc = df["description"].fillna("")
    is_lender = df["counterparty_name"].fillna("").str.contains(cp, regex=True) | desc.str.contains(ds, regex=True)
    df["is_loan_disbursement"] = (df["amount"] > 0) & is_lender & ~desc.str.contains(REPAY_ONLY, regex=True)
    df["is_refund_or_reversal"] = desc.str.contains(REFUND, regex=True)
    df["month_on"] = df["booked_at"].dt.to_period("M").dt.to_timestamp()

    inflow = df["amount"] > 0
    rel = df["is_own"] | df["is_related"]
    clean = inflow & ~rel & ~df["is_loan_disbursement"] & ~df["is_refund_or_reversal"]
    df["_in"] = df["amount"].where(inflow, 0.0)
    df["_out"] = (-df["amount"]).where(~inflow, 0.0)
    df["_clean"] = df["amount"].where(clean, 0.0)
    df["_rel_out"] = (-df["amount"]).where(~inflow & rel, 0.0)
    df["_rel_out_n"] = (~inflow & rel).astype("int64")
    months = (
        df.groupby(["account_id", "currency", "month_on"], sort=True)
        .agg(
            txn_count=("amount", "size"),
            inflow=("_in", "sum"),
            outflow=("_out", "sum"),
            clean_income=("_clean", "sum"),
            related_out=("_rel_out", "sum"),
            related_out_count=("_rel_out_n", "sum"),
        )
        .reset_index()
    )
    df = df.drop(columns=["_in", "_out", "_clean", "_rel_out", "_rel_out_n"])
    g = months.groupby(["account_id", "currency"], sort=False)["clean_income"]
    roll = g.rolling(6, min_periods=1)
    months["window_months"] = roll.count().reset_index(level=[0, 1], drop=True)
    mean = roll.mean().reset_index(level=[0, 1], drop=True)
    std = roll.std(ddof=0).reset_index(level=[0, 1], drop=True)
    months["income_cv"] = (std / mean.replace(0, np.nan)).where(months["window_months"] >= 4)
    months["typical_income"] = g.transform(lambda s: s.shift(1).rolling(6, min_periods=1).median())
    months["related_out_share"] = months["related_out"] / months["outflow"].replace(0, np.nan)

    out = df.loc[
        (df["amount"] < 0) & ~df["is_own"], ["txn_id", "account_id", "currency", "month_on", "booked_at", "amount"]
    ]
    out = out.merge(
        months[["account_id", "currency", "month_on", "typical_income"]],
        on=["account_id", "currency", "month_on"],
        how="left",
    )
    out["amount_out"] = -out.pop("amount")
    out["limit_amount"] = np.where(
        out["typical_income"].isna(), 50000.0, np.maximum(2 * out["typical_income"].fillna(0), 20000.0)
    )
    large = out[out["amount_out"] >= out["limit_amount"]]
    return {"transactions": df, "account_months": months, "large_outflows": large}


def run(data: Path, db: Path) -> dict:
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    steps = {}
    df = read(data)
    steps["read"] = round(time.perf_counter() - started, 3)
    t0 = time.perf_counter()
    tables = features(df, data)
    del df
    steps["features"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    for name, frame in tables.items():
        con.register("_frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
        con.unregister("_frame")
    con.close()
    steps["write"] = round(time.perf_counter() - t0, 3)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "steps": steps,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]))))
