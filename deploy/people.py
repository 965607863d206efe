"""Made-up people for demo data and tests, shaped like a real unit's staff list: resident ID numbers of people
born 1950-2008 from many real district codes (the code of the place the number was first issued, so a worker
born in 1962 holds 530102 五华区, a code in use only from 1983), the sequence digit matching the sex, a correct
GB 11643 check digit; legacy 15-digit numbers on request; names with rare characters (𠮷, 䶮, 堃, 喆, 赟) and
minority names written with ·; Luhn-valid bank card numbers; mobile numbers. No real person's data is used."""

from __future__ import annotations

import random
from datetime import date, timedelta

from services.enrollment.domain.roster_rules import luhn_ok
from shared.idnumber import check_digit

# Region codes of GB/T 2260 (python-stdnum's table), each the code a number issued there carries.
KUNMING = ["530102", "530103", "530111", "530112", "530113", "530114", "530181", "530124", "530125", "530100"]
YUNNAN = ["530302", "530402", "530602", "530702", "532301", "532501", "532502", "532801", "532901", "533103",
          "530381", "532623"]
ELSEWHERE = ["110105", "310104", "440106", "510104", "520102", "450102", "420106"]
REGIONS = KUNMING * 3 + YUNNAN + ELSEWHERE  # most staff of a Kunming unit were first registered in Kunming

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高",
            "林", "罗", "𠮷", "段", "普", "欧阳", "司马"]
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
         "建华", "红梅", "䶮", "堃", "喆", "赟", "子堃", "思喆", "文赟", "昊䶮", "玥", "燚"]
# Uyghur, Yi, Tibetan and Dai names as ID cards write them: given name · family or father's name.
MINORITY = ["阿依古丽·买买提", "买买提·艾力", "古丽娜尔·吐尔逊", "阿苏·拉则", "扎西·次仁", "岩温·玉香", "迪丽热巴·艾尼瓦尔"]
BANKS = ["中国工商银行昆明五华支行", "中国农业银行昆明分行", "中国建设银行云南省分行", "富滇银行昆明分行",
         "云南红塔银行玉溪分行", "中国邮政储蓄银行昆明市盘龙区支行"]


def birth_date(rng: random.Random, member_type: str = "in_service") -> date:
    """Retirees born 1950-1970, staff in service 1960-2008."""
    first, last = (date(1950, 1, 1), date(1970, 12, 31)) if member_type == "retired" else \
        (date(1960, 1, 1), date(2008, 12, 31))
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def sequence(rng: random.Random, sex: str | None) -> int:
    """The 3-digit sequence; its last digit is odd for men, even for women (GB 11643)."""
    seq = rng.randrange(0, 999)
    if sex is not None:
        seq = seq - seq % 2 + (1 if sex == "male" else 0)
    return seq


def certno(rng: random.Random, region: str | None = None, sex: str | None = None,
           born: date | None = None) -> str:
    body = f"{region or rng.choice(REGIONS)}{born or birth_date(rng):%Y%m%d}{sequence(rng, sex):03d}"
    return body + check_digit(body)


def legacy_certno(rng: random.Random, region: str | None = None, sex: str | None = None) -> str:
    """A first-generation 15-digit number (cards of 1984-2004): region, YYMMDD, sequence, no check digit."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange((date(1984, 12, 31) - date(1950, 1, 1)).days))
    return f"{region or rng.choice(KUNMING)}{born:%y%m%d}{sequence(rng, sex):03d}"


def name(rng: random.Random) -> str:
    if rng.random() < 0.08:
        return rng.choice(MINORITY)
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def luhn_account(rng: random.Random, prefix: str = "622202") -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(12))
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def person(rng: random.Random, member_type: str = "in_service") -> dict[str, object]:
    sex = rng.choice(["male", "female"])
    return {
        "name": name(rng),
        "certno": certno(rng, sex=sex, born=birth_date(rng, member_type)),
        "phone": "1" + rng.choice("3589") + "".join(str(rng.randrange(10)) for _ in range(9)),
        "sex": sex,
        "member_type": member_type,
        "bank_account": luhn_account(rng),
        "bank_name": rng.choice(BANKS),
        "insurance": ["basic_medical", "critical_illness_supplement"],
    }
