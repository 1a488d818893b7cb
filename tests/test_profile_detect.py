"""Which profile claims a file: every column a profile reads must be in the header, a `header_exclude` column
marks another layout (the ICBC credit-card export is not the debit one), and two profiles that fit equally
make the file ambiguous instead of one being picked silently. Checked on every layout of the project's
fixtures and, where present, of the real samples (../shared/fixtures/bank_exports)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from liushui.ingest.inbox import ingest_files
from liushui.ingest.profiles import (
    SHIPPED_PROFILES_DIR,
    AmbiguousLayout,
    ProfileError,
    detect_profile,
    load_profiles,
    matching_profiles,
)
from tests.conftest import FIXTURES, SHARED_FIXTURES

# every layout file -> the shipped profile that must claim it (None: no shipped profile knows the layout)
PROJECT_LAYOUTS = {
    "icbc_debit.csv": "icbc_debit",
    "icbc_credit.csv": None,  # ICBC credit card: 记账日期 besides 交易日期
    "6214000000001234_cmb_debit.csv": "cmb_debit",
    "boc_debit.csv": "boc_debit",
    "alipay_gbk.csv": "alipay",
    "400-123456-838_hsbchk_debit.csv": "hsbchk_debit",
    "6222600000005678_bocom_debit.csv": "bocom_debit",
    "6225680000001111_cgb_credit.csv": "cgb_credit",
    "4392260000002222_cmb_credit.csv": "cmb_credit",
    "jd.csv": "jd",
    "td_1234567.csv": "td",
}
REAL_LAYOUTS = {
    "icbc_debit.csv": "icbc_debit",
    "cmb_debit.csv": "cmb_debit",
    "boc_debit.csv": "boc_debit",
    "alipay_gbk.csv": "alipay",
    "hsbchk_debit.csv": "hsbchk_debit",
    "bocom_debit.csv": "bocom_debit",
    "cgb_credit.csv": "cgb_credit",
    "cmb_credit.csv": "cmb_credit",
    "jd.csv": "jd",
    "td.csv": "td",
}
needs_real = pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"real samples not found at {SHARED_FIXTURES}")


@pytest.fixture(scope="module")
def shipped():
    return load_profiles()


def ingest(path: Path):
    return ingest_files(
        [path],
        known_file_hashes=set(),
        is_known_txn=lambda ids: pl.Series([False] * len(ids)),
        batch_id="b1",
        latest_booking=date(2026, 11, 28),
    )


def test_the_project_fixtures_name_every_layout_file():
    assert sorted(p.name for p in FIXTURES.glob("*.csv")) == sorted(PROJECT_LAYOUTS)


@pytest.mark.parametrize(("file_name", "expected"), PROJECT_LAYOUTS.items())
def test_each_project_layout_is_claimed_by_its_profile_only(shipped, file_name, expected):
    assert [p.name for p in matching_profiles(FIXTURES / file_name, shipped)] == ([expected] if expected else [])


@needs_real
@pytest.mark.parametrize(("file_name", "expected"), REAL_LAYOUTS.items())
def test_each_real_layout_is_claimed_by_its_profile_only(shipped, file_name, expected):
    assert sorted(p.name for p in SHARED_FIXTURES.glob("*.csv")) == sorted(REAL_LAYOUTS)
    assert [p.name for p in matching_profiles(SHARED_FIXTURES / file_name, shipped)] == ([expected] if expected else [])


@needs_real
@pytest.mark.parametrize(("file_name", "expected"), [(f, p) for f, p in REAL_LAYOUTS.items() if p])
def test_each_real_layout_loads_with_its_profile(file_name, expected):
    result = ingest(SHARED_FIXTURES / file_name)
    row = result.source_files.row(0, named=True)
    assert row["profile"] == expected
    assert row["rows_read"] == row["rows_ok"] + row["rows_rejected"] > 0


def test_the_icbc_credit_card_export_is_not_read_as_a_debit_card(shipped):
    result = ingest(FIXTURES / "icbc_credit.csv")
    row = result.source_files.row(0, named=True)
    assert row["status"] == "rejected"
    assert row["error"] == (
        "icbc_credit.csv: unknown layout: the header matches neither the canonical columns (account_id, "
        "booked_at, amount, ...) nor any layout profile; profile 'icbc_debit' does not apply: the header "
        "(line 7) has 记账日期, which marks another layout (header_exclude)"
    )


def _user_profile(folder: Path, name: str, signature: str, **replace: tuple[str, str]) -> None:
    """A copy of the shipped icbc_debit profile under `name` with `signature` (and text replaced)."""
    text = (SHIPPED_PROFILES_DIR / "icbc_debit.yaml").read_text("utf-8")
    text = text.replace("name: icbc_debit", f"name: {name}").replace(
        "header_signature: [交易日期, 摘要, 记账金额(收入), 记账金额(支出), 余额]", f"header_signature: [{signature}]"
    )
    for old, new in replace.values():
        assert old in text
        text = text.replace(old, new)
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_two_profiles_that_fit_equally_make_the_file_ambiguous(tmp_path, shipped):
    # same columns read, smaller signature: it fits the file exactly as well as icbc_debit does
    _user_profile(tmp_path, "icbc_loose", "交易日期, 摘要")
    profiles = shipped | load_profiles(tmp_path)
    with pytest.raises(AmbiguousLayout) as exc:
        detect_profile(FIXTURES / "icbc_debit.csv", profiles)
    assert str(exc.value) == (
        "icbc_debit.csv: ambiguous layout: profiles 'icbc_debit', 'icbc_loose' all match the header and none is "
        "more specific (its columns a superset of the others'); force one with --profile, or give one a "
        "distinguishing header_signature / header_exclude"
    )


def test_an_ambiguous_file_is_rejected_with_both_names_and_nothing_loads(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    _user_profile(mine, "icbc_loose", "交易日期, 摘要")
    result = ingest_files(
        [FIXTURES / "icbc_debit.csv"],
        known_file_hashes=set(),
        is_known_txn=lambda ids: pl.Series([False] * len(ids)),
        batch_id="b1",
        latest_booking=date(2026, 11, 28),
        profiles_dir=mine,
    )
    row = result.source_files.row(0, named=True)
    assert row["status"] == "rejected"
    assert row["error"].startswith("icbc_debit.csv: ambiguous layout: profiles 'icbc_debit', 'icbc_loose'")
    assert result.transactions.height == 0


def test_a_profile_reading_more_columns_wins_over_one_it_includes(tmp_path, shipped):
    # reads everything icbc_debit reads, plus 交易国家或地区简称: strictly more specific
    _user_profile(tmp_path, "icbc_country", "交易日期, 摘要, 交易国家或地区简称")
    profiles = shipped | load_profiles(tmp_path)
    assert detect_profile(FIXTURES / "icbc_debit.csv", profiles).name == "icbc_country"
    assert [p.name for p in matching_profiles(FIXTURES / "icbc_debit.csv", profiles)] == [
        "icbc_country",
        "icbc_debit",
    ]


def test_a_profile_missing_a_column_it_reads_does_not_claim_the_file(tmp_path, shipped):
    _user_profile(
        tmp_path,
        "icbc_memo",
        "交易日期, 摘要",
        memo=("  counterparty_name: 对方户名\n", "  counterparty_account: 对方账户\n"),
    )
    profiles = load_profiles(tmp_path)
    assert detect_profile(FIXTURES / "icbc_debit.csv", profiles) is None


def test_a_credit_card_profile_claims_the_file_the_debit_one_excludes(tmp_path, shipped):
    _user_profile(tmp_path, "icbc_credit", "交易日期, 记账日期, 摘要", exclude=("header_exclude: [记账日期]", ""))
    profiles = shipped | load_profiles(tmp_path)
    assert detect_profile(FIXTURES / "icbc_credit.csv", profiles).name == "icbc_credit"
    assert detect_profile(FIXTURES / "icbc_debit.csv", profiles).name == "icbc_debit"


def test_header_exclude_may_not_name_a_column_the_profile_reads(tmp_path):
    _user_profile(tmp_path, "bad", "交易日期, 摘要", exclude=("header_exclude: [记账日期]", "header_exclude: [余额]"))
    with pytest.raises(ProfileError, match="header_exclude names columns the profile needs: 余额"):
        load_profiles(tmp_path)
