"""The dashboard's words in English and 中文: page names, the texts and column headers of the worklist and
customer pages, and the flag codes' names (from the rule registry, the same names the CLI prints).

English is the key: `say(text, language)` returns the text itself in English and its translation in 中文
(the text itself when it has none). In English a column header is the published column's name, as in SQL,
the CLI and the downloaded CSV; in 中文 it is translated.
"""

from __future__ import annotations

import polars as pl

from transforms.registry import RULES

LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

FLAG_NAMES = {
    "en": {rule.code: rule.name_en for rule in RULES},
    "zh": {rule.code: rule.name_zh for rule in RULES},
}
"""Language -> flag code -> the code's name (多头借贷, 以贷养贷 ...)."""

ZH = {
    "Page": "页面",
    "Overview": "总览",
    "Worklist": "工作清单",
    "Customer": "客户",
    "Account": "账户",
    "Run health": "运行状况",
    "Band": "风险等级",
    "Recovery status": "恢复状态",
    "Active flag code (any of)": "有效风险标记（任一）",
    "Minimum score": "最低分数",
    "Changed in the last publish": "上次发布后有变化",
    "Customer id or holder name contains": "客户号或户名包含",
    "accounts": "个账户",
    "Select a row to open its account.": "选中一行即可打开该账户。",
    "Download CSV": "下载 CSV",
    "No account passes these filters.": "没有符合这些条件的账户。",
    "Customer id, holder name or account id": "客户号、户名或账号",
    "The riskiest customers; search above, or select a row to open the customer.": (
        "风险最高的客户；可在上方搜索，或选中一行打开该客户。"
    ),
    "customers match; select one.": "个客户符合；请选择一个。",
    "No customer id, holder name or account id matches": "没有匹配的客户号、户名或账号",
    "Accounts": "账户数",
    "Worst band": "最高风险等级",
    "Highest score": "最高分数",
    "Flagged accounts": "有标记的账户",
    "Active flags": "有效风险标记",
    "none": "无",
    "The customer's accounts": "该客户的账户",
    "Select an account to open it.": "选中一个账户即可打开。",
    "Transfers between its own accounts": "本人账户之间的转账",
    "No transfers between its accounts.": "其账户之间没有转账。",
    "Customer page": "客户页面",
    "customer": "客户",
    "As of": "截至",
}

COLUMNS_ZH = {
    "account_id": "账号",
    "customer_id": "客户号",
    "holder_name": "户名",
    "holder_names": "户名",
    "score": "分数",
    "change": "变化",
    "band": "风险等级",
    "recovery_status": "恢复状态",
    "active_flags": "有效风险标记",
    "active_flag_count": "有效标记数",
    "months_since_severe": "距上次严重标记月数",
    "clears_on": "标记失效日",
    "currency": "币种",
    "clean_income_last": "上月净收入",
    "clean_income_6m": "近6月净收入",
    "accounts": "账户数",
    "worst_band": "最高风险等级",
    "max_score": "最高分数",
    "flagged_accounts": "有标记的账户",
    "from_account_id": "转出账号",
    "to_account_id": "转入账号",
    "transfers": "笔数",
    "amount": "金额",
    "first_on": "首笔日期",
    "last_on": "末笔日期",
}


def say(text: str, language: str) -> str:
    """`text` in `language` (English is the text itself)."""
    return ZH.get(text, text) if language == "zh" else text


def flag_label(code: str, language: str) -> str:
    """A flag code with its name: `MULTI_LENDER 多头借贷` or `MULTI_LENDER · Borrowing from many lenders`."""
    name = FLAG_NAMES[language].get(code)
    if not name:
        return code
    return f"{code} {name}" if language == "zh" else f"{code} · {name}"


def with_flag_labels(frame: pl.DataFrame, language: str, column: str = "active_flags") -> pl.DataFrame:
    """The list of flag codes in `column` as one text of labels, e.g. `MULTI_LENDER 多头借贷, OVERDRAWN 透支`."""
    labels = {code: flag_label(code, language) for code in FLAG_NAMES[language]}
    return frame.with_columns(pl.col(column).list.eval(pl.element().replace(labels)).list.join(", ").alias(column))


def headers(frame: pl.DataFrame, language: str) -> pl.DataFrame:
    """The frame with its column headers in `language`."""
    if language != "zh":
        return frame
    return frame.rename({c: COLUMNS_ZH[c] for c in frame.columns if c in COLUMNS_ZH})
