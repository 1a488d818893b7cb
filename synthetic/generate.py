"""Deterministic sample data: canonical bank-statement exports with planted, labelled risk behaviours.

`generate_sample` writes, under `out_dir`:

- `inbox/transactions_partNNN.csv|.parquet`: canonical transactions (`CANONICAL_INPUT_COLUMNS`), one
  part per chunk of customers (~200k rows each), every account entirely inside one part, rows sorted by
  account then `booked_at` (local time, unique within an account). `txn_id` is empty; `balance_after` is
  the exact running balance in statement order.
- `inbox/overlap_export.csv`: a re-export of the last two months of 2-3 accounts, row for row identical
  to rows already in the parts (the pipeline must deduplicate it).
- `reference/accounts.csv`, `reference/related_parties.csv`: ownership and declared related parties.
- `labels.csv`: ground truth, one row per account x behaviour x month in which the behaviour was
  planted (`month_on` = first day of the month).

Label months per behaviour: income_volatile every month from the 3rd on; large_outflow, round_trip,
related_transfer_heavy, overdue, debt_burden_high, commingling, balance_break the months planted;
multi_lender every month whose 90 days ending on its last day hold disbursements (放款) from >= 4
distinct lenders (computed from the rows); borrow_to_repay the months of each pair's repayment leg;
cycle the month of each cycle, for every participating account.

Money is generated as integer cents (int64) and only ever formatted / converted to Decimal(18,2); the
bulk of the rows (merchant spending, salary, bills, family transfers) is drawn with numpy per chunk,
while the planted behaviours add a handful of rows per affected account. Same arguments and seed give
byte-identical files.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from liushui.contracts import CANONICAL_INPUT_COLUMNS

BEHAVIOURS: tuple[str, ...] = (
    "income_volatile",
    "large_outflow",
    "related_transfer_heavy",
    "round_trip",
    "multi_lender",
    "borrow_to_repay",
    "overdue",
    "debt_burden_high",
    "commingling",
    "balance_break",
    "cycle",
)
FILE_FORMATS = ("both", "csv", "parquet")
ROWS_PER_PART = 200_000
BOOKED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
MULTI_LENDER_WINDOW_DAYS = 90
MULTI_LENDER_MIN_LENDERS = 4

# Share of personal accounts per behaviour, pairs of behaviours that may share an account, and the
# rough number of rows per account-month (used to turn `target_rows` into a number of accounts).
_BEHAVIOUR_SHARE = 0.04
_PAIR_SHARE = 0.10
_BUSINESS_SHARE = 0.03
_TWO_ACCOUNT_SHARE = 0.10
_ROWS_PER_ACCOUNT_MONTH = 80.0
_COMPATIBLE_PAIRS = (
    ("multi_lender", "overdue"),
    ("debt_burden_high", "overdue"),
    ("large_outflow", "balance_break"),
    ("round_trip", "related_transfer_heavy"),
    ("income_volatile", "balance_break"),
    ("round_trip", "balance_break"),
)
_LENDER_BEHAVIOURS = {"multi_lender", "borrow_to_repay", "overdue", "debt_burden_high"}
_DAY = 86_400
_HOUR = 3_600


@dataclass(frozen=True)
class Lender:
    """A lending platform as it appears on statements (names a lender registry matches)."""

    key: str
    disburse_name: str | None
    repay_name: str
    disburse_memo: str | None
    repay_memo: str


LENDERS: tuple[Lender, ...] = (
    Lender("jiebei", "重庆蚂蚁消费金融有限公司", "重庆蚂蚁消费金融有限公司", "借呗放款", "借呗还款"),
    Lender("huabei", None, "支付宝（中国）网络技术有限公司", None, "花呗还款"),
    Lender("weilidai", "深圳前海微众银行股份有限公司", "深圳前海微众银行股份有限公司", "微粒贷放款", "微粒贷还款"),
    Lender("jd_jintiao", "京东科技信息技术有限公司", "京东科技信息技术有限公司", "京东金条借款", "京东金条还款"),
    Lender("duxiaoman", "度小满科技（北京）有限公司", "度小满科技（北京）有限公司", "有钱花放款", "有钱花还款"),
    Lender("jietiao360", "福州三六零网络小额贷款有限公司", "上海三六零融资担保有限公司", "360借条放款", "360借条还款"),
    Lender("zhaolian", "招联消费金融股份有限公司", "招联消费金融股份有限公司", "招联好期贷放款", "招联还款"),
    Lender("mashang", "马上消费金融股份有限公司", "马上消费金融股份有限公司", "安逸花放款", "安逸花还款"),
    Lender("wangshang", "浙江网商银行股份有限公司", "浙江网商银行股份有限公司", "网商贷放款", "网商贷还款"),
    Lender("meituan", "重庆美团三快小额贷款有限公司", "重庆美团三快小额贷款有限公司", "美团借钱放款", "美团借钱还款"),
    Lender("fenqile", "深圳市分期乐网络科技有限公司", "深圳市分期乐网络科技有限公司", "分期乐放款", "分期乐还款"),
)
_HUABEI = 1
_JIEBEI = 0
_LOAN_LENDERS = tuple(i for i, lender in enumerate(LENDERS) if lender.disburse_name is not None)

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏辉宇浩凯健俊帆帅旭宁龙林欣佳雪琳晨婷颖倩怡梅兰"
    "凤慧莉燕丹玲彤悦瑶思雨嘉子梓轩博文然诗涵晓志国建海峰斌鑫亮波飞成春新金云兵德庆福祥荣东江振永楠琪瑞泽睿航阳昊"
)
_CITIES = ("上海", "北京", "深圳", "杭州", "广州", "成都", "南京", "苏州", "武汉", "西安")
_POWER = (
    "国网上海市电力公司",
    "国网北京市电力公司",
    "深圳供电局有限公司",
    "国网浙江省电力有限公司",
    "广州供电局有限公司",
    "国网四川省电力公司",
    "国网江苏省电力有限公司",
    "国网江苏省电力有限公司",
    "国网湖北省电力有限公司",
    "国网陕西省电力有限公司",
)
_WORDS = (
    "华信",
    "恒达",
    "博远",
    "星辰",
    "瑞丰",
    "中科",
    "鼎盛",
    "汇通",
    "天润",
    "嘉禾",
    "宏图",
    "锦程",
    "新元",
    "启明",
    "长风",
    "远航",
    "金桥",
    "海纳",
    "云帆",
    "致远",
    "安泰",
    "广源",
    "永兴",
    "同創",
    "凯旋",
    "明德",
    "盛世",
    "东方",
    "百川",
    "青松",
    "正阳",
    "聚力",
    "优品",
    "万象",
    "卓越",
    "信达",
    "宏远",
    "和光",
    "润泽",
    "九州",
)
_EMPLOYER_KINDS = (
    "科技",
    "信息技术",
    "网络科技",
    "电子科技",
    "实业",
    "物流",
    "医药",
    "教育科技",
    "建设工程",
    "文化传媒",
    "智能科技",
    "生物科技",
    "企业管理咨询",
    "餐饮管理",
)
_TRADE_KINDS = ("商贸", "贸易", "商贸", "进出口贸易", "贸易")
_SUPPLIER_KINDS = ("商贸", "贸易", "五金机电", "包装材料", "实业")
_BANKS = (  # (card BIN, bank short name)
    ("622202", "工商银行"),
    ("621700", "建设银行"),
    ("622848", "农业银行"),
    ("621483", "招商银行"),
    ("621661", "中国银行"),
    ("622262", "交通银行"),
)
_PERSON_BINS = ("622202", "621700", "622848", "621483", "621661", "622262", "622908", "621226", "623058")
# Merchant: (name, median amount in yuan, relative frequency, channel options).
_MERCHANTS = (
    ("美团外卖", 35.0, 12.0, ("支付宝", "财付通")),
    ("滴滴出行", 28.0, 8.0, ("支付宝", "财付通")),
    ("京东商城", 180.0, 5.0, ("银联", "财付通")),
    ("拼多多", 60.0, 6.0, ("支付宝", "财付通")),
    ("星巴克", 38.0, 4.0, ("支付宝", "POS")),
    ("盒马鲜生", 120.0, 4.0, ("支付宝", "支付宝")),
    ("淘宝", 90.0, 8.0, ("支付宝", "支付宝")),
    ("饿了么", 32.0, 6.0, ("支付宝", "支付宝")),
    ("瑞幸咖啡", 18.0, 5.0, ("财付通", "支付宝")),
    ("肯德基", 45.0, 3.0, ("支付宝", "POS")),
    ("麦当劳", 40.0, 3.0, ("财付通", "POS")),
    ("全家便利店", 22.0, 5.0, ("财付通", "支付宝")),
    ("罗森便利店", 20.0, 3.0, ("财付通", "POS")),
    ("中国石化", 300.0, 2.0, ("银联", "POS")),
    ("地铁出行", 6.0, 6.0, ("支付宝", "财付通")),
    ("永辉超市", 150.0, 3.0, ("POS", "支付宝")),
    ("沃尔玛", 160.0, 2.0, ("POS", "财付通")),
    ("携程旅行", 800.0, 0.8, ("银联", "支付宝")),
    ("中国铁路网络有限公司", 300.0, 1.0, ("支付宝", "银联")),
    ("屈臣氏", 90.0, 1.0, ("POS", "支付宝")),
    ("优衣库", 250.0, 1.0, ("POS", "支付宝")),
    ("海底捞", 350.0, 1.0, ("POS", "财付通")),
    ("喜茶", 25.0, 3.0, ("财付通", "支付宝")),
    ("蜜雪冰城", 10.0, 2.0, ("财付通", "支付宝")),
    ("爱奇艺", 25.0, 0.6, ("支付宝", "支付宝")),
)
_CHANNEL_MEMO = {"支付宝": "支付宝快捷支付", "财付通": "财付通快捷支付", "银联": "银联在线支付", "POS": "POS消费"}
_FAMILY_MEMOS = ("转账", "转账", "转账", "生活费", "红包")
_INCOME_MEMOS = ("劳务费", "经营收入", "项目款", "设计费", "服务费")
_SIDE_MEMOS = ("稿费", "兼职报酬", "讲课费")


@dataclass(frozen=True)
class GeneratedSample:
    """What `generate_sample` wrote."""

    out_dir: Path
    transaction_files: tuple[Path, ...]
    overlap_file: Path
    accounts_file: Path
    related_parties_file: Path
    labels_file: Path
    n_accounts: int
    n_customers: int
    n_rows: int
    """Transaction rows in the parts (the overlap re-export not included)."""
    n_overlap_rows: int
    n_label_rows: int


def generate_sample(
    out_dir: Path,
    *,
    seed: int = 7,
    n_accounts: int = 200,
    months: int = 12,
    end_month: date = date(2026, 10, 1),
    file_format: str = "both",
    target_rows: int | None = None,
) -> GeneratedSample:
    """Write a deterministic sample dataset (inbox, reference data, labels) under `out_dir`.

    `months` full calendar months ending with `end_month` (inclusive) are generated. `target_rows`, when
    given, overrides `n_accounts` with the number of accounts that yields about that many rows.
    `file_format`: "both" alternates CSV and Parquet parts (part 0 CSV, part 1 Parquet, ...), "csv" or
    "parquet" writes only that format. The overlap re-export is always CSV.
    """
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
    if months < 6:
        raise ValueError(f"months must be >= 6 (behaviours need history), got {months}")
    if target_rows is not None:
        if target_rows <= 0:
            raise ValueError(f"target_rows must be positive, got {target_rows}")
        n_accounts = max(40, round(target_rows / (months * _ROWS_PER_ACCOUNT_MONTH)))
    if n_accounts < 30:
        raise ValueError(f"n_accounts must be >= 30 to plant every behaviour, got {n_accounts}")

    out_dir = Path(out_dir)
    inbox = out_dir / "inbox"
    reference = out_dir / "reference"
    inbox.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    for stale in [*inbox.glob("transactions_part*"), inbox / "overlap_export.csv"]:
        stale.unlink(missing_ok=True)

    world = _World(seed, n_accounts, months, date(end_month.year, end_month.month, 1))
    parts = world.plan_parts(file_format)
    overlap_cutoff_us = int(world.month_start_day[months - 2]) * _DAY * 1_000_000
    overlap_ids = pl.Series([world.account_ids[a] for a in world.overlap_accounts], dtype=pl.String)

    files: list[Path] = []
    overlap_frames: list[pl.DataFrame] = []
    n_rows = 0
    for part_no, (a0, a1, fmt) in enumerate(parts):
        frame = world.generate_part(part_no, a0, a1)
        n_rows += frame.height
        path = inbox / f"transactions_part{part_no:03d}.{fmt}"
        if fmt == "csv":
            frame.write_csv(path, datetime_format=BOOKED_AT_FORMAT)
        else:
            frame.write_parquet(path, compression="zstd", statistics=True)
        files.append(path)
        overlap_frames.append(
            frame.filter(
                pl.col("account_id").is_in(overlap_ids.implode())
                & (pl.col("booked_at").dt.epoch("us") >= overlap_cutoff_us)
            )
        )
        del frame

    overlap = pl.concat(overlap_frames)
    overlap_file = inbox / "overlap_export.csv"
    overlap.write_csv(overlap_file, datetime_format=BOOKED_AT_FORMAT)

    accounts_file = reference / "accounts.csv"
    related_file = reference / "related_parties.csv"
    labels_file = out_dir / "labels.csv"
    world.accounts_frame().write_csv(accounts_file)
    world.related_parties_frame().write_csv(related_file)
    labels = world.labels_frame()
    labels.write_csv(labels_file)
    return GeneratedSample(
        out_dir=out_dir,
        transaction_files=tuple(files),
        overlap_file=overlap_file,
        accounts_file=accounts_file,
        related_parties_file=related_file,
        labels_file=labels_file,
        n_accounts=world.n,
        n_customers=world.n_customers,
        n_rows=n_rows,
        n_overlap_rows=overlap.height,
        n_label_rows=labels.height,
    )


# ---------------------------------------------------------------------------------------------------
# Building blocks


class _Strings:
    """Interned strings: rows carry int32 codes, the frame is built with one `gather`. Code 0 is null."""

    def __init__(self) -> None:
        self.items: list[str | None] = [None]
        self.index: dict[str, int] = {}
        self._series: pl.Series | None = None

    def code(self, text: str | None) -> int:
        if text is None:
            return 0
        found = self.index.get(text)
        if found is None:
            found = len(self.items)
            self.items.append(text)
            self.index[text] = found
            self._series = None
        return found

    def lookup(self, codes: np.ndarray) -> pl.Series:
        if self._series is None:
            self._series = pl.Series(self.items, dtype=pl.String)
        return self._series.gather(pl.Series(codes.astype(np.uint32)))


class _Events:
    """Column-wise buffer of transactions (account index, time, cents and string codes)."""

    _FIELDS = ("acct", "ts", "cents", "name", "cpacct", "desc", "chan", "drop")
    _DTYPES = (np.int64, np.int64, np.int64, np.int32, np.int32, np.int32, np.int32, np.bool_)

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {f: [] for f in self._FIELDS}

    def add(self, acct, ts, cents, name, cpacct, desc, chan, drop=False) -> None:
        ts = np.asarray(ts, dtype=np.int64)
        n = ts.shape[0] if ts.ndim else 1
        for field, value, dtype in zip(
            self._FIELDS, (acct, ts, cents, name, cpacct, desc, chan, drop), self._DTYPES, strict=True
        ):
            self.columns[field].append(np.broadcast_to(np.asarray(value, dtype=dtype), (n,)))

    def add_rows(self, rows: list[tuple]) -> None:
        if rows:
            self.add(*(np.array(column) for column in zip(*rows, strict=True)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f: np.concatenate(parts) if parts else np.empty(0, dtype=dt)
            for (f, parts), dt in zip(self.columns.items(), self._DTYPES, strict=True)
        }


def _money_series(cents: np.ndarray) -> pl.Series:
    """int64 cents -> Decimal(18,2), exactly (the int128 buffer is the cents, sign-extended)."""
    words = np.empty((cents.shape[0], 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    array = pa.Array.from_buffers(pa.decimal128(18, 2), cents.shape[0], [None, pa.py_buffer(words)])
    return pl.from_arrow(array)


def _digits(rng: np.random.Generator, prefix: str, length: int) -> str:
    return prefix + "".join(map(str, rng.integers(0, 10, size=length - len(prefix))))


def _fixed_account(name: str) -> str:
    """A stable corporate account number for a well-known institution (independent of the seed)."""
    return f"{zlib.crc32(name.encode()) % 10**10:010d}{zlib.crc32(name[::-1].encode()) % 10**9:09d}"


def _tod(rng: np.random.Generator, n: int, lo: int = 7, hi: int = 23) -> np.ndarray:
    return rng.integers(lo * _HOUR, hi * _HOUR, size=n)


def _round_to(cents: np.ndarray | float, unit_cents: int) -> np.ndarray:
    return (np.maximum(np.rint(np.atleast_1d(cents) / unit_cents), 1) * unit_cents).astype(np.int64)


def _yuan(amount: np.ndarray | float) -> np.ndarray:
    """Float yuan -> int64 cents, at least one cent (generated amounts are never zero)."""
    return np.maximum(np.rint(np.atleast_1d(np.asarray(amount, dtype=np.float64)) * 100), 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# The world: customers, accounts, their habits and the planted behaviours


class _World:
    def __init__(self, seed: int, n_accounts: int, months: int, end_month: date) -> None:
        self.seed = seed
        self.months = months
        rng = np.random.default_rng([seed, 0])
        self.strings = _Strings()

        first = np.datetime64(f"{end_month.year:04d}-{end_month.month:02d}", "M") - (months - 1)
        self.month_start_day = np.arange(first, first + months + 1).astype("datetime64[D]").astype(np.int64)
        self.month_len = np.diff(self.month_start_day)
        self.month_on = [np.datetime64(int(d), "D").astype(object) for d in self.month_start_day[:months]]
        self.data_end_ts = int(self.month_start_day[-1]) * _DAY

        self._build_customers(rng, n_accounts)
        self._assign_behaviours(rng)
        self._build_habits(rng)
        self.labels: list[tuple[int, str, int]] = []
        self._plan_cycles(rng)
        personal_ok = [a for a in range(self.n) if not self.is_business[a] and "balance_break" not in self.beh[a]]
        n_overlap = 2 if self.n < 100 else 3
        self.overlap_accounts = sorted(int(a) for a in rng.choice(np.array(personal_ok), size=n_overlap, replace=False))
        self.acct_series = pl.Series(self.account_ids, dtype=pl.String)

    # -- customers and accounts ----------------------------------------------------------------------
    def _build_customers(self, rng: np.random.Generator, n_accounts: int) -> None:
        n_business = max(1, round(_BUSINESS_SHARE * n_accounts)) if n_accounts >= 30 else 0
        n_personal = n_accounts - n_business
        sizes = 1 + (rng.random(n_personal) < _TWO_ACCOUNT_SHARE).astype(np.int64)
        ends = np.cumsum(sizes)
        n_cust = int(np.searchsorted(ends, n_personal)) + 1
        sizes = sizes[:n_cust]
        sizes[-1] -= int(ends[n_cust - 1] - n_personal)
        kinds = [("personal", int(k)) for k in sizes] + [("business", 1)] * n_business
        order = rng.permutation(len(kinds))
        kinds = [kinds[i] for i in order]

        self.n = n_accounts
        self.n_customers = len(kinds)
        self.customer_ids: list[str] = []
        self.cust_of = np.empty(n_accounts, dtype=np.int64)
        self.is_business = np.zeros(n_accounts, dtype=bool)
        self.other = np.full(n_accounts, -1, dtype=np.int64)
        self.holder: list[str] = []
        self.account_ids: list[str] = []
        self.bank = np.empty(n_accounts, dtype=np.int64)
        self.city = rng.integers(0, len(_CITIES), size=n_accounts)
        used_ids: set[str] = set()
        used_names: set[str] = set()
        a = 0
        for c, (kind, size) in enumerate(kinds):
            self.customer_ids.append(f"C{c + 1:07d}")
            if kind == "business":
                name = self._unique(used_names, lambda: self._company(rng, _EMPLOYER_KINDS + _TRADE_KINDS))
            else:
                name = self._unique(used_names, lambda: self._person(rng))
            for k in range(size):
                bank = int(rng.integers(0, len(_BANKS)))
                if kind == "business":
                    acct = self._unique(used_ids, lambda: _digits(rng, "3100", 19))
                else:
                    length = 16 if rng.random() < 0.5 else 19
                    acct = self._unique(used_ids, lambda b=bank, n=length: _digits(rng, _BANKS[b][0], n))
                self.account_ids.append(acct)
                self.holder.append(name)
                self.bank[a] = bank
                self.cust_of[a] = c
                self.is_business[a] = kind == "business"
                if size == 2:
                    self.other[a] = a + 1 if k == 0 else a - 1
                a += 1
        self.holder_names = used_names

    @staticmethod
    def _unique(used: set[str], make) -> str:
        while True:
            value = make()
            if value not in used:
                used.add(value)
                return value

    @staticmethod
    def _person(rng: np.random.Generator, surname: str | None = None) -> str:
        sur = surname or _SURNAMES[int(rng.integers(0, len(_SURNAMES)))]
        given = _GIVEN[int(rng.integers(0, len(_GIVEN)))]
        if rng.random() < 0.7:
            given += _GIVEN[int(rng.integers(0, len(_GIVEN)))]
        return sur + given

    def _other_person(self, rng: np.random.Generator, surname: str | None = None) -> str:
        """A counterparty person whose name is not an account holder's (no accidental own transfers)."""
        while True:
            name = self._person(rng, surname)
            if name not in self.holder_names:
                return name

    @staticmethod
    def _company(rng: np.random.Generator, kinds: tuple[str, ...]) -> str:
        city = _CITIES[int(rng.integers(0, len(_CITIES)))]
        word = _WORDS[int(rng.integers(0, len(_WORDS)))]
        return f"{city}{word}{kinds[int(rng.integers(0, len(kinds)))]}有限公司"

    def _company_pool(self, rng: np.random.Generator, size: int, kinds: tuple[str, ...]) -> np.ndarray:
        """(name code, account code) pairs of companies, shape (size, 2): distinct while the name parts
        allow (a budget of draws, since large datasets ask for more names than the parts can make), then
        the pool repeats — at that scale companies are shared by many customers, as in life."""
        names: dict[str, str] = {}
        draws = 0
        while len(names) < size and draws < 20 * size:
            draws += 1
            name = self._company(rng, kinds)
            if name not in names and name not in self.holder_names:
                names[name] = _digits(rng, str(int(rng.integers(1, 10))), int(rng.choice([12, 15, 19])))
        pairs = np.array([[self.strings.code(k), self.strings.code(v)] for k, v in names.items()], np.int32)
        return np.resize(pairs, (size, 2))

    # -- behaviours -----------------------------------------------------------------------------------
    def _assign_behaviours(self, rng: np.random.Generator) -> None:
        self.beh: list[set[str]] = [set() for _ in range(self.n)]
        personal = [int(a) for a in rng.permutation(np.flatnonzero(~self.is_business))]
        pool = iter(personal)
        quota = {b: max(2, round(_BEHAVIOUR_SHARE * len(personal))) for b in BEHAVIOURS if b != "cycle"}
        n_pairs = max(1, round(_PAIR_SHARE * sum(quota.values())))
        for k in range(n_pairs):
            first, second = _COMPATIBLE_PAIRS[k % len(_COMPATIBLE_PAIRS)]
            if quota[first] > 1 and quota[second] > 1:
                self.beh[next(pool)] |= {first, second}
                quota[first] -= 1
                quota[second] -= 1
        for behaviour, count in quota.items():
            for _ in range(count):
                self.beh[next(pool)].add(behaviour)
        # Cycles join 3-4 accounts of different customers that carry no other behaviour.
        free = list(pool)
        n_groups = max(1, round(_BEHAVIOUR_SHARE * len(personal) / 3.5))
        self.cycle_groups: list[list[int]] = []
        for _ in range(n_groups):
            size = int(rng.integers(3, 5))
            group: list[int] = []
            while free and len(group) < size:
                a = free.pop()
                if all(self.cust_of[a] != self.cust_of[g] for g in group):
                    group.append(a)
            if len(group) < 3:
                break
            for a in group:
                self.beh[a].add("cycle")
            self.cycle_groups.append(group)

    # -- per-account habits ---------------------------------------------------------------------------
    def _build_habits(self, rng: np.random.Generator) -> None:
        n, s = self.n, self.strings
        salary = np.clip(rng.lognormal(np.log(11_000), 0.5, n), 5_000, 40_000)
        self.salary = np.rint(salary / 10) * 10  # yuan, base monthly pay
        volatile = np.array(["income_volatile" in b for b in self.beh])
        self.has_salary = ~self.is_business & ~volatile
        self.salary_day = np.where(rng.random(n) < 0.2, 24, rng.integers(9, 15, size=n))  # 0-based day
        self.lam = rng.uniform(40, 105, size=n)  # merchant transactions per month
        self.merchant_share = rng.uniform(0.2, 0.4, size=n)
        self.rent_share = np.where(rng.random(n) < 0.7, rng.uniform(0.2, 0.35, size=n), 0.0)
        self.rent_day = rng.integers(0, 5, size=n)
        # Credit card and the one normal lender stay below ~13% of pay each (debt service < 30%).
        self.cc_share = np.where(rng.random(n) < 0.6, rng.uniform(0.04, 0.10, size=n), 0.0)
        self.cc_day = rng.integers(17, 22, size=n)
        lender_draw = rng.random(n)
        has_lender_behaviour = np.array([bool(b & _LENDER_BEHAVIOURS) for b in self.beh])
        self.base_lender = np.where(
            has_lender_behaviour, -1, np.where(lender_draw < 0.4, _HUABEI, np.where(lender_draw < 0.5, _JIEBEI, -1))
        )
        self.lender_share = rng.uniform(0.03, 0.10, size=n)
        self.side_prob = np.where((rng.random(n) < 0.4) & ~volatile, rng.uniform(0.05, 0.3, size=n), 0.0)
        # Family and own-account transfers are sized on the account's usual spending, so they stay a
        # small share of its outflow (a high earner with no rent spends little).
        spend = self.merchant_share + self.rent_share + self.cc_share + 0.05
        self.family_share = rng.uniform(0.05, 0.12, size=n) * spend
        self.own_share = spend
        self.opening_share = rng.uniform(0.5, 4.0, size=n)
        self.floor_cents = _yuan(rng.uniform(100, 3000, size=n))
        self.employer = self._company_pool(rng, max(8, n // 15), _EMPLOYER_KINDS)[
            rng.integers(0, max(8, n // 15), size=n)
        ]
        self.side_payer = self._company_pool(rng, max(4, n // 40), _EMPLOYER_KINDS)[
            rng.integers(0, max(4, n // 40), size=n)
        ]
        self.power = np.array([s.code(_POWER[c]) for c in self.city], np.int32)
        self.water = np.array([s.code(f"{_CITIES[c]}自来水有限公司") for c in self.city], np.int32)
        self.cc_name = np.array([s.code(f"{_BANKS[b][1]}信用卡中心") for b in self.bank], np.int32)
        self.cc_card = np.array([s.code(_digits(rng, "6225", 16)) for _ in range(n)], np.int32)

        # Persons around each account: landlord and a friend (not related), declared related parties.
        self.landlord = np.zeros((n, 2), np.int32)
        self.friend = np.zeros((n, 2), np.int32)
        for a in range(n):
            self.landlord[a] = (s.code(self._other_person(rng)), s.code(self._person_card(rng)))
            self.friend[a] = (s.code(self._other_person(rng)), s.code(self._person_card(rng)))
        self.related: list[list[tuple[str, str, str]]] = [[] for _ in range(self.n_customers)]
        for a in range(n):
            c = int(self.cust_of[a])
            if self.related[c] or (self.other[a] >= 0 and a > self.other[a]):
                continue
            surname = self.holder[a][0]
            if self.is_business[a]:
                parties = [(self._other_person(rng), "legal_representative"), (self._other_person(rng), "shareholder")]
            else:
                mine = self.beh[a] | (self.beh[int(self.other[a])] if self.other[a] >= 0 else set())
                needs_two = bool(mine & {"related_transfer_heavy", "round_trip"})
                parties = []
                if rng.random() < 0.6 or needs_two:
                    parties.append((self._other_person(rng), "spouse"))
                if rng.random() < 0.7 or needs_two:
                    parties.append((self._other_person(rng, surname), "family"))
                if rng.random() < 0.3:
                    parties.append((self._other_person(rng, surname), "family"))
            self.related[c] = [(name, self._person_card(rng), rel) for name, rel in parties]
        self.family = np.zeros((n, 3, 2), np.int32)
        self.n_family = np.zeros(n, np.int64)
        for a in range(n):
            parties = [p for p in self.related[int(self.cust_of[a])] if p[2] in ("spouse", "family")]
            self.n_family[a] = len(parties)
            for k, (name, card, _) in enumerate(parties):
                self.family[a, k] = (s.code(name), s.code(card))
        self.acct_code = np.array([s.code(x) for x in self.account_ids], np.int32)
        self.holder_code = np.array([s.code(x) for x in self.holder], np.int32)
        self.lender_disb = np.array([s.code(x.disburse_name) for x in LENDERS], np.int32)
        self.lender_repay = np.array([s.code(x.repay_name) for x in LENDERS], np.int32)
        self.lender_disb_acct = np.array(
            [s.code(_fixed_account(x.disburse_name or x.repay_name)) for x in LENDERS], np.int32
        )
        self.lender_repay_acct = np.array([s.code(_fixed_account(x.repay_name)) for x in LENDERS], np.int32)
        self.lender_disb_memo = np.array([s.code(x.disburse_memo) for x in LENDERS], np.int32)
        self.lender_repay_memo = np.array([s.code(x.repay_memo) for x in LENDERS], np.int32)
        self.trade_pool = self._company_pool(rng, max(30, n // 10), _TRADE_KINDS)
        self.supplier_pool = self._company_pool(rng, max(20, n // 15), _SUPPLIER_KINDS)
        self.client_pool = self._company_pool(rng, max(20, n // 20), _EMPLOYER_KINDS)
        self.estate_pool = self._company_pool(rng, 10, ("房地产开发",))

    @staticmethod
    def _person_card(rng: np.random.Generator) -> str:
        return _digits(rng, _PERSON_BINS[int(rng.integers(0, len(_PERSON_BINS)))], 19 if rng.random() < 0.6 else 16)

    # -- cross-account cycles (planned once, both legs of every hop) --------------------------------
    def _plan_cycles(self, rng: np.random.Generator) -> None:
        s = self.strings
        rows: list[tuple] = []
        transfer, netbank = s.code("转账"), s.code("网银")
        for group in self.cycle_groups:
            k = len(group)
            n_cycles = 2 if self.months >= 8 and rng.random() < 0.4 else 1
            for m in rng.choice(np.arange(1, self.months), size=n_cycles, replace=False):
                m = int(m)
                t = (int(self.month_start_day[m]) + int(rng.integers(0, 15))) * _DAY + int(_tod(rng, 1, 9, 17)[0])
                amount = int(_round_to(rng.uniform(50_000, 200_000) * 100, 100_00)[0])
                for hop in range(k):
                    src, dst = group[hop], group[(hop + 1) % k]
                    if hop:
                        amount = int(np.rint(amount * (1 - rng.uniform(0, 0.03))))
                        t += int(rng.integers(1, 4)) * _DAY + int(rng.integers(-2 * _HOUR, 2 * _HOUR))
                    lag = int(rng.integers(5, 300))
                    rows.append((src, t, -amount, self.holder_code[dst], self.acct_code[dst], transfer, netbank, False))
                    rows.append(
                        (dst, t + lag, amount, self.holder_code[src], self.acct_code[src], transfer, netbank, False)
                    )
                for a in group:
                    self.labels.append((a, "cycle", m))
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 8
        self.cycle_rows = {
            f: np.array(c, dtype=dt) for f, c, dt in zip(_Events._FIELDS, cols, _Events._DTYPES, strict=True)
        }

    # -- parts ------------------------------------------------------------------------------------------
    def plan_parts(self, file_format: str) -> list[tuple[int, int, str]]:
        """Contiguous account ranges (never splitting a customer) of about ROWS_PER_PART rows each."""
        est = self.months * np.where(self.is_business, 45.0, self.lam + 12.0)
        boundaries = [0]
        acc = 0.0
        for a in range(self.n):
            acc += est[a]
            customer_ends = a + 1 == self.n or self.cust_of[a + 1] != self.cust_of[a]
            if acc >= ROWS_PER_PART and customer_ends and a + 1 < self.n:
                boundaries.append(a + 1)
                acc = 0.0
        boundaries.append(self.n)
        if file_format == "both" and len(boundaries) == 2:
            half = int(np.searchsorted(np.cumsum(est), est.sum() / 2))
            while half < self.n - 1 and self.cust_of[half] == self.cust_of[half - 1]:
                half += 1
            boundaries = [0, max(1, half), self.n]
        formats = {"csv": ("csv",), "parquet": ("parquet",), "both": ("csv", "parquet")}[file_format]
        return [(boundaries[i], boundaries[i + 1], formats[i % len(formats)]) for i in range(len(boundaries) - 1)]

    def generate_part(self, part_no: int, a0: int, a1: int) -> pl.DataFrame:
        rng = np.random.default_rng([self.seed, 1, part_no])
        part = _Part(self, rng, a0, a1)
        return part.build()

    # -- reference tables and labels --------------------------------------------------------------------
    def accounts_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": self.account_ids,
                "customer_id": [self.customer_ids[c] for c in self.cust_of],
                "holder_name": self.holder,
                "account_type": np.where(self.is_business, "business", "personal").tolist(),
            }
        )

    def related_parties_frame(self) -> pl.DataFrame:
        rows: list[tuple[str, str, str, str]] = []
        for c, parties in enumerate(self.related):
            rows.extend((self.customer_ids[c], name, card, rel) for name, card, rel in parties)
        for a in range(self.n):
            if self.other[a] >= 0:
                rows.append((self.customer_ids[self.cust_of[a]], self.holder[a], self.account_ids[a], "self"))
        rows.sort(key=lambda r: (r[0], r[3] != "self", r[2]))
        return pl.DataFrame(rows, schema=["customer_id", "party_name", "party_account", "relation"], orient="row")

    def labels_frame(self) -> pl.DataFrame:
        unique = sorted(set(self.labels), key=lambda r: (r[0], BEHAVIOURS.index(r[1]), r[2]))
        return pl.DataFrame(
            {
                "account_id": [self.account_ids[a] for a, _, _ in unique],
                "behaviour": [b for _, b, _ in unique],
                "month_on": pl.Series([self.month_on[m] for _, _, m in unique], dtype=pl.Date),
            }
        )


# ---------------------------------------------------------------------------------------------------
# One part: the rows of a contiguous range of accounts


class _Part:
    def __init__(self, world: _World, rng: np.random.Generator, a0: int, a1: int) -> None:
        self.w = world
        self.rng = rng
        self.a0, self.a1 = a0, a1
        self.events = _Events()
        self.disbursements: list[tuple[int, int, int]] = []  # (account, epoch day, lender)
        self.salary_cents = np.zeros((a1 - a0, world.months), np.int64)
        self.side_cents = np.zeros((a1 - a0, world.months), np.int64)
        self.c = world.strings.code

    # -- helpers ---------------------------------------------------------------------------------------
    def ts(self, m, day0, secs) -> np.ndarray:
        m = np.asarray(m)
        day0 = np.clip(day0, 0, self.w.month_len[m] - 1)
        return (self.w.month_start_day[m] + day0) * _DAY + np.asarray(secs)

    def month_of(self, ts: int) -> int:
        return int(np.searchsorted(self.w.month_start_day, ts // _DAY, side="right") - 1)

    def accounts_with(self, behaviour: str) -> list[int]:
        return [a for a in range(self.a0, self.a1) if behaviour in self.w.beh[a]]

    def label(self, a: int, behaviour: str, months) -> None:
        self.w.labels.extend((a, behaviour, int(m)) for m in months)

    # -- build ------------------------------------------------------------------------------------------
    def build(self) -> pl.DataFrame:
        self.personal_base()
        self.business_base()
        self.plant_income_volatile()
        self.plant_large_outflow()
        self.plant_round_trip()
        self.plant_multi_lender()
        self.plant_borrow_to_repay()
        self.plant_overdue()
        self.plant_debt_burden_high()
        self.plant_commingling()
        self.plant_balance_break()
        cyc = self.w.cycle_rows
        inside = (cyc["acct"] >= self.a0) & (cyc["acct"] < self.a1)
        self.events.add(*(cyc[f][inside] for f in _Events._FIELDS))
        self.plant_related_transfer_heavy()  # last: it sizes itself on the month's other outflows
        self.label_multi_lender()
        return self.finish()

    # -- everyday life (vectorised over accounts x months) -------------------------------------------
    def personal_base(self) -> None:
        w, rng, ev, c = self.w, self.rng, self.events, self.c
        M = w.months
        acc = np.arange(self.a0, self.a1)
        acc = acc[~w.is_business[acc]]
        if acc.size == 0:
            return
        aa = np.repeat(acc, M)
        mm = np.tile(np.arange(M), acc.size)
        S = w.salary[aa]
        ncell = aa.size

        # Salary (代发工资), stable with +-5% noise.
        paid = w.has_salary[aa]
        pay = _yuan(S * rng.uniform(0.95, 1.05, ncell))
        # Paid on the 10th-15th (a day either way), or on the 25th.
        day = w.salary_day[aa]
        pay_day = np.where(day < 20, np.clip(day + rng.integers(-1, 2, ncell), 9, 14), day)
        self.salary_cents[aa[paid] - self.a0, mm[paid]] = pay[paid]
        ev.add(
            aa[paid],
            self.ts(mm, pay_day, _tod(rng, ncell, 8, 12))[paid],
            pay[paid],
            w.employer[aa[paid], 0],
            w.employer[aa[paid], 1],
            c("代发工资"),
            c("代发"),
        )

        # Occasional small side income from a company (稿费, 讲课费 ...).
        side = rng.random(ncell) < w.side_prob[aa]
        side_pay = _round_to(S * rng.uniform(0.02, 0.08, ncell) * 100, 100)
        self.side_cents[aa[side] - self.a0, mm[side]] = side_pay[side]
        ev.add(
            aa[side],
            self.ts(mm, rng.integers(0, 28, ncell), _tod(rng, ncell))[side],
            side_pay[side],
            w.side_payer[aa[side], 0],
            w.side_payer[aa[side], 1],
            np.array([c(x) for x in _SIDE_MEMOS], np.int32)[rng.integers(0, 3, ncell)][side],
            c("网银"),
        )

        self.merchants(aa, mm, S)

        # Rent to a landlord (person), utilities, credit card.
        rent = w.rent_share[aa] > 0
        ev.add(
            aa[rent],
            self.ts(mm, w.rent_day[aa], _tod(rng, ncell, 8, 22))[rent],
            -_round_to(S * w.rent_share[aa] * 100, 100_00)[rent],
            w.landlord[aa[rent], 0],
            w.landlord[aa[rent], 1],
            c("房租"),
            c("手机银行"),
        )
        ev.add(
            aa,
            self.ts(mm, rng.integers(5, 20, ncell), _tod(rng, ncell)),
            -_yuan(rng.uniform(60, 450, ncell) * np.clip(S / 15_000, 0.6, 1.5)),
            w.power[aa],
            0,
            c("电费"),
            c("代扣"),
        )
        water = mm % 2 == 0
        ev.add(
            aa[water],
            self.ts(mm, rng.integers(10, 25, ncell), _tod(rng, ncell))[water],
            -_yuan(rng.uniform(30, 160, ncell))[water],
            w.water[aa[water]],
            0,
            c("水费"),
            c("代扣"),
        )
        cc = w.cc_share[aa] > 0
        ev.add(
            aa[cc],
            self.ts(mm, w.cc_day[aa], _tod(rng, ncell))[cc],
            -_yuan(S * w.cc_share[aa] * rng.uniform(0.7, 1.3, ncell))[cc],
            w.cc_name[aa[cc]],
            w.cc_card[aa[cc]],
            c("信用卡还款"),
            c("网银"),
        )

        # Family: a few transfers out (<= ~10% of pay), now and then a red packet in.
        n_fam = w.n_family[aa]
        count = np.where(n_fam > 0, rng.choice(4, size=ncell, p=[0.2, 0.35, 0.3, 0.15]), 0)
        fa = np.repeat(aa, count)
        fm = np.repeat(mm, count)
        nf = fa.size
        each = (S * w.family_share[aa] / np.maximum(count, 1))[np.repeat(np.arange(ncell), count)]
        amount = _round_to(np.clip(each * rng.uniform(0.6, 1.4, nf), 100, 2000) * 100, 10_00)
        who = (rng.random(nf) * w.n_family[fa]).astype(np.int64)
        memos = np.array([c(x) for x in _FAMILY_MEMOS], np.int32)
        ev.add(
            fa,
            self.ts(fm, rng.integers(0, 28, nf), _tod(rng, nf)),
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
            self.ts(mm, rng.integers(0, 28, ncell), _tod(rng, ncell))[back],
            _round_to(rng.uniform(100, 1000, ncell) * 100, 10_00)[back],
            w.family[aa, who, 0][back],
            w.family[aa, who, 1][back],
            c("红包"),
            c("手机银行"),
        )

        # Own other account: both legs (the other account is in the dataset).
        own = (w.other[aa] >= 0) & (rng.random(ncell) < 0.2)
        t = self.ts(mm, rng.integers(0, 28, ncell), _tod(rng, ncell))[own]
        amount = _round_to(S * w.own_share[aa] * rng.uniform(0.05, 0.2, ncell) * 100, 100_00)[own]
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

        # ATM cash, quarterly interest.
        atm = rng.random(ncell) < 0.25
        ev.add(
            aa[atm],
            self.ts(mm, rng.integers(0, 28, ncell), _tod(rng, ncell))[atm],
            -np.minimum(rng.integers(1, 21, ncell) * 100_00, _round_to(S * 30, 100_00))[atm],
            0,
            0,
            c("ATM取款"),
            c("ATM"),
        )
        month_no = (w.month_start_day[mm].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12) + 1
        interest = month_no % 3 == 0
        ev.add(
            aa[interest],
            self.ts(mm, 20, _tod(rng, ncell, 8, 10))[interest],
            _yuan(rng.uniform(0.5, 40, ncell))[interest],
            0,
            0,
            c("结息"),
            c("柜面"),
        )

        # At most one lender, used normally: monthly 花呗 repayments, or one 借呗 loan in instalments.
        hb = w.base_lender[aa] == _HUABEI
        ev.add(
            aa[hb],
            self.ts(mm, 8, _tod(rng, ncell))[hb],
            -_yuan(S * w.lender_share[aa] * rng.uniform(0.7, 1.3, ncell))[hb],
            w.lender_repay[_HUABEI],
            w.lender_repay_acct[_HUABEI],
            w.lender_repay_memo[_HUABEI],
            c("支付宝"),
        )
        for a in acc[w.base_lender[acc] == _JIEBEI]:
            m0 = int(rng.integers(0, M - 3))
            principal = int(_round_to(w.salary[a] * rng.uniform(0.5, 1.2) * 100, 100_00)[0])
            self.loan(a, _JIEBEI, m0, int(rng.integers(0, 20)), principal, 12, 1.06)

    def merchants(self, aa: np.ndarray, mm: np.ndarray, S: np.ndarray) -> None:
        w, rng, c = self.w, self.rng, self.c
        names = np.array([c(x[0]) for x in _MERCHANTS], np.int32)
        median = np.array([x[1] for x in _MERCHANTS])
        weight = np.array([x[2] for x in _MERCHANTS])
        chans = np.array([[c(ch) for ch in x[3]] for x in _MERCHANTS], np.int32)
        memo_of_chan = {c(ch): c(memo) for ch, memo in _CHANNEL_MEMO.items()}
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
        merchant = np.minimum(np.searchsorted(cum, rng.random(n)), len(_MERCHANTS) - 1)
        scale = np.clip(w.salary[ra] * w.merchant_share[ra] / w.lam[ra] / mean_ticket, 0.4, 3.0)
        cents = _yuan(np.clip(median[merchant] * rng.lognormal(0, 0.5, n) * scale, 1, 0.4 * Sr))
        day = (rng.random(n) * w.month_len[rm]).astype(np.int64)
        peak = rng.random(n)
        secs = np.where(
            peak < 0.3,
            rng.integers(11 * _HOUR + 1800, 13 * _HOUR + 1800, n),
            np.where(peak < 0.6, rng.integers(17 * _HOUR + 1800, 21 * _HOUR, n), _tod(rng, n)),
        )
        chan = chans[merchant, rng.integers(0, 2, n)]
        t = self.ts(rm, day, secs)
        self.events.add(ra, t, -cents, names[merchant], 0, memos[chan], chan)
        refund = rng.random(n) < 0.012
        t_back = (t // _DAY + rng.integers(1, 6, n)) * _DAY + _tod(rng, n)
        refund &= t_back < w.data_end_ts
        self.events.add(ra[refund], t_back[refund], cents[refund], names[merchant][refund], 0, c("退款"), chan[refund])

    def business_base(self) -> None:
        """A trading company: many 货款 receipts, supplier payments, payroll, tax, rent, fees."""
        w, rng, ev, c = self.w, self.rng, self.events, self.c
        M = w.months
        for a in range(self.a0, self.a1):
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
                    self.ts(m, rng.integers(0, 28, n_in), _tod(rng, n_in, 9, 18)),
                    _yuan(total * share),
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
                    self.ts(m, rng.integers(0, 28, n_out), _tod(rng, n_out, 9, 18)),
                    -_yuan(total * 0.6 * share),
                    who[:, 0],
                    who[:, 1],
                    memo,
                    c("网银"),
                )
                fixed = [
                    (-_yuan(total * 0.18), 14, 0, 0, c("代发工资"), c("代发")),
                    (-_yuan(total * rng.uniform(0.03, 0.06)), 15, c("国家金库"), 0, c("税款"), c("代扣")),
                    (-_yuan(revenue * 0.04), 2, landlord[0], landlord[1], c("房租"), c("网银")),
                    (-_yuan(rng.uniform(20, 200)), 25, 0, 0, c("手续费"), c("柜面")),
                ]
                for cents, day, name, acct, memo, chan in fixed:
                    ev.add(a, self.ts(m, day, _tod(rng, 1, 9, 18)), cents, name, acct, memo, chan)

    # -- lenders ---------------------------------------------------------------------------------------
    def disburse(self, a: int, lender: int, t: int, cents: int) -> None:
        w = self.w
        self.events.add(
            a, t, cents, w.lender_disb[lender], w.lender_disb_acct[lender], w.lender_disb_memo[lender], self.c("网银")
        )
        self.disbursements.append((a, t // _DAY, lender))

    def repay(self, a: int, lender: int, t, cents) -> None:
        w = self.w
        self.events.add(
            a,
            t,
            -np.asarray(cents),
            w.lender_repay[lender],
            w.lender_repay_acct[lender],
            w.lender_repay_memo[lender],
            self.c("网银"),
        )

    def loan(
        self,
        a: int,
        lender: int,
        m0: int,
        day0: int,
        principal: int,
        n_inst: int,
        factor: float,
        skip: set[int] | frozenset = frozenset(),
    ) -> None:
        """Disburse in month m0, then monthly instalments from m0+1 on the same day (within the data)."""
        self.disburse(a, lender, int(self.ts(m0, day0, _tod(self.rng, 1)[0])), principal)
        months = np.arange(m0 + 1, min(m0 + 1 + n_inst, self.w.months))
        months = np.array([m for m in months if m not in skip], dtype=np.int64)
        if months.size:
            inst = int(np.rint(principal * factor / n_inst))
            self.repay(a, lender, self.ts(months, day0, _tod(self.rng, months.size)), inst)

    # -- behaviours --------------------------------------------------------------------------------------
    def plant_income_volatile(self) -> None:
        """No salary; client payments whose monthly total swings wildly (CV > 0.8 in every 6 months)."""
        w, rng, c = self.w, self.rng, self.c
        M = w.months
        levels = np.array([0.0, 0.5, 1.3, 4.0])
        for a in self.accounts_with("income_volatile"):
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
                memo = np.array([c(x) for x in _INCOME_MEMOS])[rng.integers(0, len(_INCOME_MEMOS), k)]
                self.events.add(
                    a,
                    self.ts(m, rng.integers(0, 28, k), _tod(rng, k, 9, 20)),
                    _yuan(total * rng.dirichlet(np.full(k, 2.0))),
                    who[:, 0],
                    who[:, 1],
                    memo,
                    c("网银"),
                )
            self.label(a, "income_volatile", range(2, M))

    def plant_large_outflow(self) -> None:
        w, rng, c = self.w, self.rng, self.c
        for a in self.accounts_with("large_outflow"):
            n = 1 + int(rng.random() < 0.4)
            chosen = sorted(int(m) for m in rng.choice(np.arange(4, w.months), size=n, replace=False))
            for m in chosen:
                S = w.salary[a]
                cents = int(_round_to(rng.uniform(max(3 * S, 30_000), 8 * S) * 100, 100_00)[0])
                kind = int(rng.integers(0, 3))
                if kind == 0:
                    estate = w.estate_pool[int(rng.integers(0, len(w.estate_pool)))]
                    name, acct, memo = estate[0], estate[1], c("购房首付")
                elif kind == 1:
                    name, acct, memo = w.friend[a, 0], w.friend[a, 1], c("转账")
                else:
                    fund = ("蚂蚁（杭州）基金销售有限公司", "上海天天基金销售有限公司")[int(rng.integers(0, 2))]
                    name, acct, memo = c(fund), c(_fixed_account(fund)), c("投资理财")
                self.events.add(
                    a, self.ts(m, rng.integers(0, 28), _tod(rng, 1, 9, 18)), -cents, name, acct, memo, c("网银")
                )
            self.label(a, "large_outflow", chosen)

    def plant_round_trip(self) -> None:
        """3-6 times a month: 20k-100k out to a party, back from the same party within 1-5 days."""
        w, rng, c = self.w, self.rng, self.c
        for a in self.accounts_with("round_trip"):
            # Related parties often play the other side, unless the account's related share is judged too.
            fam = 0 if "related_transfer_heavy" in w.beh[a] else int(w.n_family[a])
            chosen = sorted(
                int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(2, 4)), replace=False)
            )
            for m in chosen:
                k = int(rng.integers(3, 7))
                days = np.sort(rng.choice(np.arange(0, int(w.month_len[m]) - 6), size=k, replace=False))
                out = _round_to(rng.uniform(20_000, 100_000, k) * 100, 1000_00)
                back = np.where(rng.random(k) < 0.5, out, _yuan(out / 100 * (1 + rng.uniform(-0.02, 0.02, k))))
                related = (rng.random(k) < 0.6) & (fam > 0)
                pick = rng.integers(0, max(fam, 1), k)
                name = np.where(related, w.family[a, pick, 0], w.friend[a, 0])
                acct = np.where(related, w.family[a, pick, 1], w.friend[a, 1])
                t_out = self.ts(m, days, _tod(rng, k, 9, 18))
                t_back = self.ts(m, days + rng.integers(1, 6, k), _tod(rng, k, 9, 18))
                self.events.add(a, t_out, -out, name, acct, c("转账"), c("网银"))
                self.events.add(a, t_back, back, name, acct, c("往来款"), c("网银"))
            self.label(a, "round_trip", chosen)

    def plant_multi_lender(self) -> None:
        """4-6 platforms disburse within ~45 days; each is repaid in monthly instalments afterwards."""
        w, rng = self.w, self.rng
        for a in self.accounts_with("multi_lender"):
            lenders = rng.choice(np.array(_LOAN_LENDERS), size=int(rng.integers(4, 7)), replace=False)
            b = int(rng.integers(1, w.months - 2))
            start = int(w.month_start_day[b]) + int(rng.integers(0, 20))
            offsets = np.sort(rng.choice(45, size=lenders.size, replace=False))
            for lender, off in zip(lenders, offsets, strict=True):
                day = start + int(off)
                m = self.month_of(day * _DAY)
                principal = int(_round_to(max(2_000, w.salary[a] * rng.uniform(0.4, 1.2)) * 100, 100_00)[0])
                self.loan(a, int(lender), m, day - int(w.month_start_day[m]), principal, 12, 1.08)

    def label_multi_lender(self) -> None:
        """Label month M when >= 4 distinct lenders disbursed in the 90 days ending on M's last day."""
        w = self.w
        if not self.disbursements:
            return
        disb = np.array(self.disbursements, dtype=np.int64)
        for a in self.accounts_with("multi_lender"):
            mine = disb[disb[:, 0] == a]
            months = []
            for m in range(w.months):
                end = w.month_start_day[m + 1]
                inside = (mine[:, 1] >= end - MULTI_LENDER_WINDOW_DAYS) & (mine[:, 1] < end)
                if np.unique(mine[inside, 2]).size >= MULTI_LENDER_MIN_LENDERS:
                    months.append(m)
            self.label(a, "multi_lender", months)

    def plant_borrow_to_repay(self) -> None:
        """Lender B lends; later A lends and within 1-7 days B is paid off; then C lends and A is paid off."""
        w, rng = self.w, self.rng
        M = w.months
        for a in self.accounts_with("borrow_to_repay"):
            b_, a_, c_ = (int(x) for x in rng.choice(np.array(_LOAN_LENDERS), size=3, replace=False))
            m0 = int(rng.integers(0, M - 4))
            p1 = m0 + 1 + int(rng.integers(0, 2))
            p2 = min(p1 + 1 + int(rng.integers(0, 2)), M - 1)
            owed = int(_round_to(w.salary[a] * rng.uniform(0.8, 1.8) * 100, 100_00)[0])
            self.disburse(a, b_, int(self.ts(m0, rng.integers(0, 20), _tod(rng, 1)[0])), owed)
            repaid_months = []
            for pm, new, old in ((p1, a_, b_), (p2, c_, a_)):
                new_amount = int(_round_to(owed * rng.uniform(0.95, 1.08), 100_00)[0])
                t = int(self.ts(pm, rng.integers(0, int(w.month_len[pm]) - 8), _tod(rng, 1, 8, 20)[0]))
                self.disburse(a, new, t, new_amount)
                payoff = int(np.rint(owed * rng.uniform(1.005, 1.03)))
                t_pay = t + int(rng.integers(1, 8)) * _DAY + int(rng.integers(-_HOUR, _HOUR))
                self.repay(a, old, t_pay, payoff)
                repaid_months.append(self.month_of(t_pay))
                owed = new_amount
            months = np.arange(p2 + 1, M)
            if months.size:
                self.repay(a, c_, self.ts(months, 10, _tod(rng, months.size)), int(np.rint(owed * 1.06 / 12)))
            self.label(a, "borrow_to_repay", repaid_months)

    def plant_overdue(self) -> None:
        """A loan whose instalment fails (debit + 冲正) in chosen months, then 逾期罚息 / 滞纳金 and a late payment."""
        w, rng, c = self.w, self.rng, self.c
        M = w.months
        for a in self.accounts_with("overdue"):
            lender = int(rng.choice(np.array(_LOAN_LENDERS)))
            chosen = sorted(int(m) for m in rng.choice(np.arange(2, M), size=int(rng.integers(2, 4)), replace=False))
            due = int(rng.integers(4, 15))
            principal = int(_round_to(w.salary[a] * rng.uniform(1.0, 2.5) * 100, 100_00)[0])
            n_inst = max(12, M)
            inst = int(np.rint(principal * 1.1 / n_inst))
            self.loan(a, lender, 0, due, principal, n_inst, 1.1, skip=set(chosen))
            name, acct = w.lender_repay[lender], w.lender_repay_acct[lender]
            for m in chosen:
                t = int(self.ts(m, due, _tod(rng, 1, 7, 12)[0]))
                self.repay(a, lender, t, inst)
                self.events.add(
                    a, t + int(rng.integers(30, 600)), inst, name, acct, c("冲正 扣款失败 余额不足"), c("网银")
                )
                late = t + int(rng.integers(2, 11)) * _DAY + int(rng.integers(0, 4 * _HOUR))
                rows = [
                    (
                        a,
                        late,
                        -int(_yuan(inst / 100 * rng.uniform(0.01, 0.05))[0]),
                        name,
                        acct,
                        c("逾期罚息"),
                        c("网银"),
                        False,
                    )
                ]
                if rng.random() < 0.6:
                    rows.append(
                        (a, late + 60, -int(_yuan(rng.uniform(20, 100))[0]), name, acct, c("滞纳金"), c("网银"), False)
                    )
                if rng.random() < 0.2:
                    rows.append(
                        (a, late + 120, -int(_yuan(rng.uniform(50, 300))[0]), name, acct, c("违约金"), c("网银"), False)
                    )
                self.events.add_rows(rows)
                self.repay(a, lender, late + 600, inst)
            self.label(a, "overdue", chosen)

    def plant_debt_burden_high(self) -> None:
        """>= 3 consecutive months where repayments to 1-2 lenders exceed 60% of that month's income."""
        w, rng = self.w, self.rng
        M = w.months
        for a in self.accounts_with("debt_burden_high"):
            k = int(rng.integers(3, min(5, M - 2) + 1))
            c0 = int(rng.integers(1, M - k + 1))
            months = np.arange(c0, c0 + k)
            i = a - self.a0
            income = self.salary_cents[i, months] + self.side_cents[i, months]
            total = np.rint(income * rng.uniform(0.68, 0.9, k)).astype(np.int64)
            lenders = rng.choice(np.array(_LOAN_LENDERS), size=1 + int(rng.random() < 0.5), replace=False)
            shares = [1.0] if lenders.size == 1 else [0.6, 0.4]
            for lender, share in zip(lenders, shares, strict=True):
                part = np.rint(total * share).astype(np.int64)
                principal = int(_round_to(part.sum() / 1.08, 100_00)[0])
                self.disburse(a, int(lender), int(self.ts(c0 - 1, rng.integers(0, 20), _tod(rng, 1)[0])), principal)
                self.repay(a, int(lender), self.ts(months, int(rng.integers(4, 25)), _tod(rng, k)), part)
            self.label(a, "debt_burden_high", months)

    def plant_commingling(self) -> None:
        """From a start month on: >= 8 货款 receipts a month from trading companies, and supplier payments."""
        w, rng, c = self.w, self.rng, self.c
        M = w.months
        for a in self.accounts_with("commingling"):
            start = int(rng.integers(0, M // 2 + 1))
            buyers = w.trade_pool[rng.choice(len(w.trade_pool), size=int(rng.integers(4, 9)), replace=False)]
            sellers = w.supplier_pool[rng.choice(len(w.supplier_pool), size=int(rng.integers(3, 6)), replace=False)]
            for m in range(start, M):
                n_in = int(rng.integers(8, 19))
                cents = _round_to(np.clip(rng.lognormal(np.log(8_000), 0.6, n_in), 2_000, 50_000) * 100, 1_00)
                who = buyers[rng.integers(0, len(buyers), n_in)]
                self.events.add(
                    a,
                    self.ts(m, rng.integers(0, 28, n_in), _tod(rng, n_in, 8, 20)),
                    cents,
                    who[:, 0],
                    who[:, 1],
                    c("货款"),
                    c("网银"),
                )
                n_out = int(rng.integers(4, 11))
                paid = _yuan(cents.sum() / 100 * rng.uniform(0.8, 0.95) * rng.dirichlet(np.full(n_out, 3.0)))
                who = sellers[rng.integers(0, len(sellers), n_out)]
                memo = np.where(rng.random(n_out) < 0.5, c("货款"), c("采购款"))
                self.events.add(
                    a,
                    self.ts(m, rng.integers(0, 28, n_out), _tod(rng, n_out, 8, 20)),
                    -paid,
                    who[:, 0],
                    who[:, 1],
                    memo,
                    c("网银"),
                )
            self.label(a, "commingling", range(start, M))

    def plant_balance_break(self) -> None:
        """One 500-5,000 row that counts in the balances but is left out of the file."""
        w, rng, c = self.w, self.rng, self.c
        for a in self.accounts_with("balance_break"):
            m = int(rng.integers(1, w.months))
            sign = -1 if rng.random() < 0.7 else 1
            cents = sign * int(_round_to(rng.uniform(500, 5000) * 100, 10_00)[0])
            self.events.add(
                a,
                self.ts(m, rng.integers(2, 20), _tod(rng, 1, 9, 20)),
                cents,
                w.friend[a, 0],
                w.friend[a, 1],
                c("转账"),
                c("手机银行"),
                drop=True,
            )
            self.label(a, "balance_break", [m])

    def plant_related_transfer_heavy(self) -> None:
        """In >= 3 months, 4-7 transfers to related parties / own account carry 63-72% of the outflow."""
        w, rng, c = self.w, self.rng, self.c
        accounts = self.accounts_with("related_transfer_heavy")
        if not accounts:
            return
        ev = self.events.arrays()
        month = np.searchsorted(w.month_start_day, ev["ts"] // _DAY, side="right") - 1
        out = (ev["cents"] < 0) & ~ev["drop"] & (month >= 0) & (month < w.months)
        outflow = np.zeros((self.a1 - self.a0, w.months), np.int64)
        np.add.at(outflow, (ev["acct"][out] - self.a0, month[out]), -ev["cents"][out])
        for a in accounts:
            fam = int(w.n_family[a])
            chosen = sorted(
                int(m) for m in rng.choice(np.arange(1, w.months), size=int(rng.integers(3, 5)), replace=False)
            )
            for m in chosen:
                base = outflow[a - self.a0, m]
                k = int(rng.integers(4, 8))
                target = base * rng.uniform(1.7, 2.6)
                cents = _round_to(target * rng.dirichlet(np.full(k, 4.0)), 100_00)
                short = int(np.ceil(1.6 * base)) - int(cents.sum())
                if short > 0:
                    cents[-1] += _round_to(short + 100_00, 100_00)[0]
                own = (np.arange(k) == 0) & (w.other[a] >= 0)
                pick = rng.integers(0, fam, k)
                t = self.ts(m, rng.integers(0, 28, k), _tod(rng, k))
                name = np.where(own, w.holder_code[a], w.family[a, pick, 0])
                acct = np.where(own, w.acct_code[max(int(w.other[a]), 0)], w.family[a, pick, 1])
                self.events.add(a, t, -cents, name, acct, c("转账"), c("手机银行"))
                if own[0]:
                    self.events.add(
                        int(w.other[a]),
                        t[0] + int(rng.integers(5, 120)),
                        cents[0],
                        w.holder_code[a],
                        w.acct_code[a],
                        c("转账"),
                        c("手机银行"),
                    )
            self.label(a, "related_transfer_heavy", chosen)

    # -- assemble -----------------------------------------------------------------------------------------
    def finish(self) -> pl.DataFrame:
        w = self.w
        ev = self.events.arrays()
        keep = (ev["ts"] < w.data_end_ts) & (ev["ts"] >= int(w.month_start_day[0]) * _DAY)
        ev = {k: v[keep] for k, v in ev.items()}
        order = np.lexsort((np.arange(ev["ts"].size), ev["ts"], ev["acct"]))
        ev = {k: v[order] for k, v in ev.items()}
        acct, cents = ev["acct"], ev["cents"]

        # Unique timestamps within an account: push ties forward by whole seconds, keeping the order.
        k = np.arange(acct.size, dtype=np.int64)
        offset = (acct - self.a0) << 40
        ts = np.maximum.accumulate(ev["ts"] - k + offset) - offset + k

        # Running balance in statement order, from an opening balance that keeps it above a floor.
        starts = np.flatnonzero(np.r_[True, acct[1:] != acct[:-1]])
        csum = np.cumsum(cents)
        before = np.r_[0, csum[starts[1:] - 1]]
        running = csum - np.repeat(before, np.diff(np.r_[starts, acct.size]))
        lowest = np.minimum.reduceat(running, starts)
        owners = acct[starts]
        base = _yuan(w.salary[owners] * w.opening_share[owners])
        base = np.where(w.is_business[owners], base * 30, base)
        opening = np.maximum(base, w.floor_cents[owners] - lowest)
        balance = running + np.repeat(opening, np.diff(np.r_[starts, acct.size]))

        visible = ~ev["drop"]
        n = int(visible.sum())
        strings = w.strings
        return pl.DataFrame(
            {
                "account_id": w.acct_series.gather(pl.Series(acct[visible].astype(np.uint32))),
                "txn_id": pl.Series([None], dtype=pl.String).gather(pl.Series(np.zeros(n, np.uint32))),
                "booked_at": pl.Series(ts[visible] * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us")),
                "amount": _money_series(cents[visible]),
                "currency": pl.Series(["CNY"], dtype=pl.String).gather(pl.Series(np.zeros(n, np.uint32))),
                "balance_after": _money_series(balance[visible]),
                "counterparty_name": strings.lookup(ev["name"][visible]),
                "counterparty_account": strings.lookup(ev["cpacct"][visible]),
                "description": strings.lookup(ev["desc"][visible]),
                "channel": strings.lookup(ev["chan"][visible]),
            }
        ).select(list(CANONICAL_INPUT_COLUMNS))
