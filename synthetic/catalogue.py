"""What the sample world is made of: the planted behaviours, the lenders, and the pools of names, banks,
merchants and memos that statement rows are drawn from. Constants only; nothing here draws at random."""

from __future__ import annotations

from dataclasses import dataclass

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
    "pass_through",
    "fan_in",
    "fan_out",
    "overdrawn",
    "income_stopped",
    "gather_scatter",
    "window_dressing",
)
NEW_BEHAVIOURS = frozenset({"pass_through", "fan_in", "fan_out", "overdrawn"})
"""Behaviours planted on a smaller share of accounts (they came later; the older quotas stay as they were)."""
# Behaviours planted through a lender (such accounts get no everyday lender of their own).
LENDER_BEHAVIOURS = {"multi_lender", "borrow_to_repay", "overdue", "debt_burden_high"}


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
HUABEI = 1
JIEBEI = 0
LOAN_LENDERS = tuple(i for i, lender in enumerate(LENDERS) if lender.disburse_name is not None)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏辉宇浩凯健俊帆帅旭宁龙林欣佳雪琳晨婷颖倩怡梅兰"
    "凤慧莉燕丹玲彤悦瑶思雨嘉子梓轩博文然诗涵晓志国建海峰斌鑫亮波飞成春新金云兵德庆福祥荣东江振永楠琪瑞泽睿航阳昊"
)
CITIES = ("上海", "北京", "深圳", "杭州", "广州", "成都", "南京", "苏州", "武汉", "西安")
POWER = (
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
WORDS = (
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
EMPLOYER_KINDS = (
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
TRADE_KINDS = ("商贸", "贸易", "商贸", "进出口贸易", "贸易")
SUPPLIER_KINDS = ("商贸", "贸易", "五金机电", "包装材料", "实业")
BANKS = (  # (card BIN, bank short name)
    ("622202", "工商银行"),
    ("621700", "建设银行"),
    ("622848", "农业银行"),
    ("621483", "招商银行"),
    ("621661", "中国银行"),
    ("622262", "交通银行"),
)
PERSON_BINS = ("622202", "621700", "622848", "621483", "621661", "622262", "622908", "621226", "623058")
# Merchant: (name, median amount in yuan, relative frequency, channel options).
MERCHANTS = (
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
CHANNEL_MEMO = {"支付宝": "支付宝快捷支付", "财付通": "财付通快捷支付", "银联": "银联在线支付", "POS": "POS消费"}
FAMILY_MEMOS = ("转账", "转账", "转账", "生活费", "红包")
INCOME_MEMOS = ("劳务费", "经营收入", "项目款", "设计费", "服务费")
SIDE_MEMOS = ("稿费", "兼职报酬", "讲课费")

# Currencies on the statements: index 0 is every account's main currency. Rates are exact decimals (the
# reference folder's fx_rates.csv), used for the cycles' currency-changing hops and 购汇.
CURRENCIES = ("CNY", "USD", "HKD")
RATE_TO_CNY = ("1.0000", "7.1000", "0.9100")
FOREIGN_MERCHANTS = {  # currency index -> (merchant, median amount in that currency)
    1: (("Amazon.com", 45.0), ("Apple Store", 120.0), ("Starbucks Seattle", 8.0), ("Uber", 20.0)),
    2: (("DFS Galleria", 600.0), ("莎莎化妆品", 300.0), ("7-Eleven HK", 40.0), ("港铁MTR", 15.0)),
}
PASS_THROUGH_MEMOS = ("转账", "往来款", "货款")
FAN_MEMOS = ("转账", "红包", "货款", "借款")
HUB_MEMOS = ("转账", "货款", "往来款", "代付", "借款")
OVERDRAWN_MEMOS = ("装修款", "学费", "医疗费")
DRESSING_IN_MEMOS = ("转账", "借款", "往来款", "周转")
DRESSING_OUT_MEMOS = ("还款", "转账", "往来款", "归还借款")
