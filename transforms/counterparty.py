"""Counterparty resolution: which account of the batch is on the other side of a transfer.

Statements rarely name the other side by our account id: they show the bank's card or account number, often
masked (`6222****1234`, `尾号1234`, `*1234`), or only a name. `resolved_counterparties` adds to every row
`counterparty_account_id` (the account of the batch, or null) and `counterparty_resolution` (how:
`liushui.vocabularies.CounterpartyResolution`), trying, most confident first:

1. `account_id` — `counterparty_account` is the id of an account of the batch (a statement of the batch, or an
   account of the reference);
2. `account_number` — it is a number `accounts.csv` declares for one account (`account_number`, `aliases`),
   compared without spaces and dashes;
3. `masked_number` — a masked number whose visible digits (prefix and at least 3 trailing digits) fit a
   declared number (or the id) of an account whose holder name is the row's `counterparty_name`
   (both normalised: NFKC, case, spaces and punctuation);
4. `mirrored_leg` — the other account's statement shows the same transfer: an opposite row of the same
   amount (or, across currencies, within `FX_TOLERANCE` through the rates table) within `MIRROR_MAX_DAYS`,
   where at least one of the two rows names the other side (resolved by 1-3, or by its holder name);
5. `holder_name` — no counterparty account at all, and the name is the holder of exactly one account.

Unique only: a row whose candidates are two accounts (two holders of one name, two mirrored rows in two
accounts, two declared numbers ending alike with one holder) resolves to nothing. A row never resolves to
its own account.

`mirrored_legs`: the pairs of rows that are the two legs of one transfer, each resolved to the other's
account — the inbound leg of a cycle hop (`transforms.cycles`).

`party_keys`: who the other side of a row is as one party across the forms a statement names it by (the
resolved account, a full number, its masked forms, the name alone) — what the fan and hub rules count.

`in_cny`: an amount in the reference currency through `fx_rates` (`liushui.contracts.FX_RATES_REF`), for
comparing amounts across currencies; null without a rate.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from liushui.vocabularies import CounterpartyResolution
from transforms.transfers import one_to_one

MIRROR_MAX_DAYS = 3
"""Days between a transfer's two legs (as `transforms.transfers.transfer_legs`)."""
FX_TOLERANCE = 0.03
"""Two legs in two currencies match when their CNY values differ by at most this share: a bank converts at
its own rate and spread, not the reference rate."""
MASK_PATTERN = r"^(\d*)[*＊xX•]+(\d{3,})$"
"""A masked number without spaces: visible leading digits, a mask, at least 3 visible trailing digits."""
TAIL_PATTERN = r"尾号[:：]?(\d{3,})"
"""`尾号1234` (last digits only)."""
_EPOCH = date(1900, 1, 1)


def normalised_name(name: pl.Expr) -> pl.Expr:
    """A person's or company's name as compared: NFKC (full-width -> half-width), lower case, without
    spaces, punctuation and symbols (`张 三`, `Zhang·San`, `ZHANG SAN` -> `张三`, `zhangsan`)."""
    return name.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[\s\p{P}\p{S}]", "")


def normalised_number(number: pl.Expr) -> pl.Expr:
    """An account or card number as compared: NFKC, upper case, without spaces and dashes."""
    return number.str.normalize("NFKC").str.to_uppercase().str.replace_all(r"[\s\-_]", "")


def party_keys(rows: pl.LazyFrame, *, within: list[str]) -> pl.LazyFrame:
    """`rows` (`txn_id`, `counterparty_account_id`, `counterparty_account`, `counterparty_name` and the columns of
    `within`) plus `party_key`: the party on the other side of each row, so that one party named in several forms
    within `within` (one account's statement) is one key. Most confident first:

    1. `acct:<id>` — the resolved account of the batch;
    2. `num:<number>` — a full (unmasked) number, normalised;
    3. a masked number (`6222****1234`, `尾号1234`) with a name: the key of a row of the same name whose full
       number fits its visible digits (prefix and trailing digits; several fit: the first key), else
       `masked:<name>:<last 3 digits>`, which every masked form of that name ending alike shares; a masked
       number without a name is its own `num:` key;
    4. a name only: the key of a numbered row (1-3) of the same name (several: the first key), else
       `name:<name>`.

    Names compare normalised (`normalised_name`: width, case, spaces, punctuation) and exactly: a fuzzy match
    would merge 张伟 and 张玮, two people. Two full numbers of one name stay two parties (two cards, or two
    people of one name); two people whose masked numbers end alike but whose names differ stay two. A row
    naming nobody has a null key."""
    number = normalised_number(pl.col("counterparty_account"))
    name = normalised_name(pl.col("counterparty_name"))
    suffix = pl.coalesce(number.str.extract(MASK_PATTERN, 2), number.str.extract(TAIL_PATTERN, 1))
    # `keyed` feeds three branches (anchors, masked rows, the rows keyed): cached, so that the rows upstream (a
    # filter over every transaction of the night) are computed once, not once per branch (at 1M rows the
    # difference was 6 s against 1 s of CPU for GATHER_SCATTER)
    keyed = (
        rows.cache()
        .with_columns(
            _pk_name=pl.when(name != "").then(name),
            _pk_number=pl.when(number != "").then(number),
            _pk_prefix=pl.coalesce(number.str.extract(MASK_PATTERN, 1), pl.lit("")),
            _pk_suffix=suffix,
        )
        .with_columns(
            _pk_direct=pl.when(pl.col("counterparty_account_id").is_not_null())
            .then(pl.lit("acct:") + pl.col("counterparty_account_id"))
            .when(pl.col("_pk_number").is_not_null() & pl.col("_pk_suffix").is_null())
            .then(pl.lit("num:") + pl.col("_pk_number"))
        )
    )
    anchors = (
        keyed.filter(pl.col("_pk_direct").is_not_null() & pl.col("_pk_name").is_not_null())
        .select(*within, "_pk_name", _pk_full="_pk_number", _pk_anchor="_pk_direct")
        .unique()
    )
    masked = keyed.filter(
        pl.col("_pk_direct").is_null() & pl.col("_pk_suffix").is_not_null() & pl.col("_pk_name").is_not_null()
    ).select("txn_id", *within, "_pk_name", "_pk_prefix", "_pk_suffix")
    fitted = (
        masked.join(anchors, on=[*within, "_pk_name"])
        .filter(
            pl.col("_pk_full").str.ends_with(pl.col("_pk_suffix"))
            & pl.col("_pk_full").str.starts_with(pl.col("_pk_prefix"))
        )
        .group_by("txn_id")
        .agg(_pk_fit=pl.col("_pk_anchor").min())
    )
    numbered = keyed.join(fitted, on="txn_id", how="left").with_columns(
        _pk_key=pl.coalesce(
            "_pk_direct",
            "_pk_fit",
            pl.when(pl.col("_pk_suffix").is_not_null() & pl.col("_pk_name").is_not_null()).then(
                pl.format("masked:{}:{}", pl.col("_pk_name"), pl.col("_pk_suffix").str.slice(-3))
            ),
            pl.when(pl.col("_pk_number").is_not_null()).then(pl.lit("num:") + pl.col("_pk_number")),
        )
    )
    by_name = (
        numbered.filter(pl.col("_pk_key").is_not_null() & pl.col("_pk_name").is_not_null())
        .group_by(*within, "_pk_name")
        .agg(_pk_named=pl.col("_pk_key").min())
    )
    return (
        numbered.join(by_name, on=[*within, "_pk_name"], how="left", nulls_equal=False)
        .with_columns(
            party_key=pl.coalesce(
                "_pk_key",
                "_pk_named",
                pl.when(pl.col("_pk_name").is_not_null()).then(pl.lit("name:") + pl.col("_pk_name")),
            )
        )
        .drop("_pk_name", "_pk_number", "_pk_prefix", "_pk_suffix", "_pk_direct", "_pk_fit", "_pk_key", "_pk_named")
    )


def resolution_value(method: CounterpartyResolution) -> pl.Expr:
    return pl.lit(method)


def declared_numbers(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """`number -> account_id` for the numbers accounts.csv declares (account_number, aliases split on ';'),
    kept only when one account declares the number."""
    numbers = (
        accounts.select(
            "account_id",
            number=pl.concat_list(
                pl.col("account_number"),
                pl.col("aliases").fill_null("").str.split(";"),
            ),
        )
        .explode("number")
        .with_columns(number=normalised_number(pl.col("number")))
        .filter(pl.col("number").is_not_null() & (pl.col("number") != ""))
        .unique()
    )
    return (
        numbers.group_by("number")
        .agg(account_id=pl.col("account_id").first(), _n=pl.col("account_id").n_unique())
        .filter(pl.col("_n") == 1)
        .drop("_n")
    )


def _holders(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """`account_id, _holder` (the normalised holder name) of every reference account with a name."""
    return accounts.filter(pl.col("holder_name").is_not_null()).select(
        "account_id", _holder=normalised_name(pl.col("holder_name"))
    )


def _unique(candidates: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """`txn_id -> column` for the rows with exactly one distinct candidate."""
    return (
        candidates.group_by("txn_id")
        .agg(pl.col(column).first(), _n=pl.col(column).n_unique())
        .filter(pl.col("_n") == 1)
        .drop("_n")
    )


def _masked_candidates(rows: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """`txn_id, _masked` for the rows whose masked counterparty number fits exactly one account whose holder is
    the counterparty name."""
    masked = (
        rows.select(
            "txn_id",
            "account_id",
            _number=normalised_number(pl.col("counterparty_account")),
            _name=normalised_name(pl.col("counterparty_name")),
        )
        .with_columns(
            _prefix=pl.coalesce(pl.col("_number").str.extract(MASK_PATTERN, 1), pl.lit("")),
            _suffix=pl.coalesce(
                pl.col("_number").str.extract(MASK_PATTERN, 2), pl.col("_number").str.extract(TAIL_PATTERN, 1)
            ),
        )
        .filter(pl.col("_suffix").is_not_null() & pl.col("_name").is_not_null() & (pl.col("_name") != ""))
        .with_columns(_tail=pl.col("_suffix").str.slice(-3))
    )
    numbers = pl.concat(
        [
            declared_numbers(accounts),
            accounts.select(number=normalised_number(pl.col("account_id")), account_id="account_id"),
        ]
    ).unique()
    known = numbers.join(_holders(accounts), on="account_id").with_columns(_tail=pl.col("number").str.slice(-3))
    fits = (
        masked.join(known, left_on=["_tail", "_name"], right_on=["_tail", "_holder"], suffix="_cp")
        .filter(
            pl.col("number").str.ends_with(pl.col("_suffix"))
            & pl.col("number").str.starts_with(pl.col("_prefix"))
            & (pl.col("account_id_cp") != pl.col("account_id"))
        )
        .select("txn_id", _masked="account_id_cp")
    )
    return _unique(fits, "_masked")


def _static_resolution(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Methods 1-3 (the row alone): `_static_id`, `_static_method`."""
    batch_ids = pl.concat([transactions.select("account_id"), accounts.select("account_id")]).unique()
    by_id = batch_ids.select(_raw=pl.col("account_id"), _by_id=pl.col("account_id"))
    by_number = declared_numbers(accounts).select(_norm="number", _by_number="account_id")
    rows = transactions.filter(pl.col("counterparty_account").is_not_null()).select(
        "txn_id", "account_id", "counterparty_account", "counterparty_name"
    )
    resolved = (
        rows.with_columns(
            _raw=pl.col("counterparty_account").str.strip_chars(),
            _norm=normalised_number(pl.col("counterparty_account")),
        )
        .join(by_id, on="_raw", how="left")
        .join(by_number, on="_norm", how="left")
        .join(_masked_candidates(rows, accounts), on="txn_id", how="left")
        .with_columns(
            _static_id=pl.coalesce("_by_id", "_by_number", "_masked"),
            _static_method=pl.when(pl.col("_by_id").is_not_null())
            .then(resolution_value("account_id"))
            .when(pl.col("_by_number").is_not_null())
            .then(resolution_value("account_number"))
            .when(pl.col("_masked").is_not_null())
            .then(resolution_value("masked_number")),
        )
        .filter(pl.col("_static_id").is_not_null() & (pl.col("_static_id") != pl.col("account_id")))
        .select("txn_id", "_static_id", "_static_method")
    )
    return transactions.join(resolved, on="txn_id", how="left")


def in_cny(
    frame: pl.LazyFrame, fx_rates: pl.LazyFrame, *, amount: str, currency: str, at: str, out: str
) -> pl.LazyFrame:
    """Add `out`: `amount` (in `currency`, on the date of `at`) in CNY through the rate valid then; CNY is
    itself; null without a rate."""
    rates = (
        fx_rates.select(
            _fx_currency=pl.col("currency"),
            _fx_on=pl.coalesce(pl.col("valid_from"), pl.lit(_EPOCH)),
            _fx_rate=pl.col("rate_to_cny"),
        )
        .unique(["_fx_currency", "_fx_on"], keep="last")
        .sort("_fx_on")
    )
    keyed = frame.with_columns(_fx_currency=pl.col(currency), _fx_on=pl.col(at).dt.date()).sort("_fx_on")
    return (
        keyed.join_asof(rates, on="_fx_on", by="_fx_currency", strategy="backward", check_sortedness=False)
        .with_columns(
            pl.when(pl.col(currency) == "CNY")
            .then(pl.col(amount).cast(pl.Float64))
            .otherwise(pl.col(amount).cast(pl.Float64) * pl.col("_fx_rate"))
            .alias(out)
        )
        .drop("_fx_currency", "_fx_on", "_fx_rate")
    )


def batch_transfers(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, min_amount: float
) -> pl.LazyFrame:
    """Outflows whose counterparty resolved to another account of the batch, of at least `min_amount` CNY
    (another currency converted when the rates table has it, else taken as it is): `txn_id, currency,
    from_account, from_customer, to_account, to_customer, at, amount` (positive) and `amount_cny` (null without
    a rate). A receiving account the reference does not name is its own customer. `transactions` carry
    `customer_id` and the resolved `counterparty_account_id`; the graph rules (cycles, scatter-gather) start here."""
    owners = pl.concat(
        [
            accounts.select(to_account="account_id", to_customer="customer_id"),
            transactions.select(to_account="account_id", to_customer="customer_id"),
        ]
    ).unique("to_account", keep="first", maintain_order=True)
    outs = transactions.filter(
        (pl.col("amount") < 0)
        & pl.col("counterparty_account_id").is_not_null()
        & (pl.col("counterparty_account_id") != pl.col("account_id"))
    ).select(
        "txn_id",
        "currency",
        from_account="account_id",
        from_customer="customer_id",
        to_account="counterparty_account_id",
        at="booked_at",
        amount=-pl.col("amount"),
    )
    return (
        in_cny(outs, fx_rates, amount="amount", currency="currency", at="at", out="amount_cny")
        .filter(pl.coalesce("amount_cny", pl.col("amount").cast(pl.Float64)) >= min_amount)
        .join(owners, on="to_account", how="left")
        .with_columns(to_customer=pl.coalesce("to_customer", "to_account"))
    )


def _legs(side: pl.LazyFrame, *, sign: int) -> pl.LazyFrame:
    """Outflows (sign -1) or inflows (+1) with the columns a leg pairing needs, prefixed `_o`/`_i`."""
    p = "_o" if sign < 0 else "_i"
    return side.filter(pl.col("amount") * sign > 0).select(
        pl.col("txn_id").alias(f"{p}txn"),
        pl.col("account_id").alias(f"{p}account"),
        pl.col("booked_at").alias(f"{p}at"),
        pl.col("amount").abs().alias(f"{p}amount"),
        pl.col("currency").alias(f"{p}currency"),
        pl.col("_peer").alias(f"{p}peer"),
        pl.col("_static_id").alias(f"{p}static"),
    )


def _matching_legs(outs: pl.LazyFrame, ins: pl.LazyFrame, fx_rates: pl.LazyFrame) -> pl.LazyFrame:
    """Pairs (outflow of X, inflow of Y) where the outflow's peer is Y (`_opeer`) or the inflow's is X
    (`_ipeer`) — the join sides decide which — of the same amount and currency, or of CNY values within
    `FX_TOLERANCE`, within `MIRROR_MAX_DAYS`."""
    near = (pl.col("_iat") - pl.col("_oat")).abs() <= pl.duration(days=MIRROR_MAX_DAYS)
    same = outs.join(
        ins, left_on=["_key", "_ocurrency", "_oamount"], right_on=["_key", "_icurrency", "_iamount"], suffix="_r"
    ).with_columns(_icurrency=pl.col("_ocurrency"), _iamount=pl.col("_oamount"))
    foreign = (
        outs.join(ins, on="_key", suffix="_r")
        .filter(pl.col("_ocurrency") != pl.col("_icurrency"))
        .pipe(in_cny, fx_rates, amount="_oamount", currency="_ocurrency", at="_oat", out="_ocny")
        .pipe(in_cny, fx_rates, amount="_iamount", currency="_icurrency", at="_iat", out="_icny")
        .filter((pl.col("_icny") - pl.col("_ocny")).abs() <= FX_TOLERANCE * pl.col("_ocny"))
        .drop("_ocny", "_icny")
    )
    columns = [
        "_otxn",
        "_oaccount",
        "_oat",
        "_oamount",
        "_ostatic",
        "_itxn",
        "_iaccount",
        "_iat",
        "_iamount",
        "_istatic",
    ]
    return pl.concat([same.select(columns), foreign.select(columns)]).filter(
        near & (pl.col("_oaccount") != pl.col("_iaccount"))
    )


def _mirror_candidates(static: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame) -> pl.LazyFrame:
    """`txn_id, _mirror`: the other account of every pair of legs in which at least one row names the other
    side (statically resolved, else by its holder name), for rows not statically resolved."""
    by_name = _holders(accounts).select(_name="_holder", _named="account_id")
    named = (
        static.select("txn_id", "account_id", "booked_at", "amount", "currency", "_static_id", "counterparty_name")
        .with_columns(_name=normalised_name(pl.col("counterparty_name")))
        .join(by_name, on="_name", how="left")
        .with_columns(_peer=pl.coalesce("_static_id", "_named"))
        .filter(pl.col("_peer") != pl.col("account_id"))
        .unique(["txn_id", "_peer"])
        .cache()
    )
    outs, ins = _legs(named, sign=-1).cache(), _legs(named, sign=+1).cache()
    # the inflow names the sender (its peer is the outflow's account), or the outflow names the receiver
    by_sender = _matching_legs(
        outs.unique("_otxn").with_columns(_key="_oaccount"), ins.with_columns(_key="_ipeer"), fx_rates
    ).filter(pl.col("_ostatic").is_null() | (pl.col("_ostatic") == pl.col("_iaccount")))
    by_receiver = _matching_legs(
        outs.with_columns(_key="_opeer"), ins.unique("_itxn").with_columns(_key="_iaccount"), fx_rates
    ).filter(pl.col("_istatic").is_null() | (pl.col("_istatic") == pl.col("_oaccount")))
    pairs = pl.concat([by_sender, by_receiver]).unique(["_otxn", "_itxn"])
    candidates = pl.concat(
        [
            pairs.filter(pl.col("_ostatic").is_null()).select(txn_id="_otxn", _mirror="_iaccount"),
            pairs.filter(pl.col("_istatic").is_null()).select(txn_id="_itxn", _mirror="_oaccount"),
        ]
    )
    return _unique(candidates, "_mirror")


def _unique_holder_accounts(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """`_name -> _by_name` for normalised holder names held by exactly one account of the reference."""
    return _unique(_holders(accounts).select(txn_id="_holder", _by_name="account_id"), "_by_name").rename(
        {"txn_id": "_name"}
    )


def resolved_counterparties(transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame) -> pl.LazyFrame:
    """`transactions` (`txn_id, account_id, booked_at, amount, currency, counterparty_account,
    counterparty_name`, ...) plus `counterparty_account_id` and `counterparty_resolution` (module docstring)."""
    static = _static_resolution(transactions, accounts).cache()  # read by both the mirror search and the result
    return (
        static.join(_mirror_candidates(static, accounts, fx_rates), on="txn_id", how="left")
        .with_columns(_name=normalised_name(pl.col("counterparty_name")))
        .join(_unique_holder_accounts(accounts), on="_name", how="left")
        .with_columns(
            _by_name=pl.when(
                pl.col("counterparty_account").is_null() & (pl.col("_by_name") != pl.col("account_id"))
            ).then(pl.col("_by_name"))
        )
        .with_columns(
            counterparty_account_id=pl.coalesce("_static_id", "_mirror", "_by_name"),
            counterparty_resolution=pl.when(pl.col("_static_id").is_not_null())
            .then(pl.col("_static_method"))
            .when(pl.col("_mirror").is_not_null())
            .then(resolution_value("mirrored_leg"))
            .when(pl.col("_by_name").is_not_null())
            .then(resolution_value("holder_name")),
        )
        .drop("_static_id", "_static_method", "_mirror", "_name", "_by_name")
    )


def mirrored_legs(resolved: pl.LazyFrame, fx_rates: pl.LazyFrame) -> pl.LazyFrame:
    """One row per transfer whose two legs are both in the batch: `out_txn_id, in_txn_id, out_at, in_at,
    amount_out, amount_in` — X's outflow resolved to Y and Y's inflow resolved to X, of the same amount (or
    within `FX_TOLERANCE` across currencies), within `MIRROR_MAX_DAYS`; each row in at most one pair (the
    nearest in time)."""
    sides = resolved.filter(pl.col("counterparty_account_id").is_not_null()).with_columns(
        _peer=pl.col("counterparty_account_id"), _static_id=pl.col("counterparty_account_id")
    )
    outs = _legs(sides, sign=-1).with_columns(_key=pl.concat_str("_oaccount", "_opeer", separator="\x1f"))
    ins = _legs(sides, sign=+1).with_columns(_key=pl.concat_str("_ipeer", "_iaccount", separator="\x1f"))
    pairs = _matching_legs(outs, ins, fx_rates).select(
        out_txn_id="_otxn",
        in_txn_id="_itxn",
        out_at="_oat",
        in_at="_iat",
        amount_out="_oamount",
        amount_in="_iamount",
        _gap=(pl.col("_iat") - pl.col("_oat")).abs(),
    )
    return one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).drop("_gap")
