"""Made-up but valid people for demo data and tests: resident ID numbers with a correct GB 11643 check
digit and birth date, Luhn-valid bank card numbers, mobile numbers. No real person's data is used."""

from __future__ import annotations

import random
from datetime import date, timedelta

from stdnum.cn import ric

from services.enrollment.domain.roster_rules import luhn_ok

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "建华", "红梅"]
BANKS = ["中国工商银行昆明五华支行", "中国农业银行昆明分行", "中国建设银行云南省分行", "富滇银行昆明分行"]


def certno(rng: random.Random, region: str = "530100", sex: str | None = None) -> str:
    birth = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
    seq = rng.randrange(0, 999)
    if sex is not None:  # the 17th digit is odd for men, even for women
        seq = seq - seq % 2 + (1 if sex == "male" else 0)
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")  # the function ignores the last character


def luhn_account(rng: random.Random, prefix: str = "622202") -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(12))
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def person(rng: random.Random, member_type: str = "in_service") -> dict[str, object]:
    sex = rng.choice(["male", "female"])
    return {
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "certno": certno(rng, sex=sex),
        "phone": "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9)),
        "sex": sex,
        "member_type": member_type,
        "bank_account": luhn_account(rng),
        "bank_name": rng.choice(BANKS),
        "insurance": ["basic_medical", "critical_illness_supplement"],
    }
