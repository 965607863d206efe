"""Unique, valid, made-up members in bulk for benchmarks: ID numbers with real check digits and birth dates
(region 530100 昆明市, valid for every year), Luhn-valid bank accounts, no two people alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta

from stdnum.cn import ric

from deploy.people import BANKS, GIVEN, SURNAMES

HEADINGS = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种"]
INSURANCE = "基本医疗保险;大病补充医疗保险"


def unique_certno(i: int) -> str:
    born = date(1962, 1, 1) + timedelta(days=i // 998)
    body = f"530100{born:%Y%m%d}{i % 998 + 1:03d}"
    return body + ric.calc_check_digit(body + "0")


def account(i: int) -> str:
    from services.enrollment.domain.roster_rules import luhn_ok

    body = f"622202{i:012d}"
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def rows(count: int, start: int = 0) -> Iterator[list[str]]:
    for i in range(start, start + count):
        sex = "男" if int(unique_certno(i)[16]) % 2 else "女"
        yield [SURNAMES[i % len(SURNAMES)] + GIVEN[(i // 7) % len(GIVEN)], unique_certno(i),
               f"13{i % 1_000_000_000:09d}", sex, "在职", account(i), BANKS[i % len(BANKS)], INSURANCE]


def csv_bytes(count: int, start: int = 0) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADINGS)
    writer.writerows(rows(count, start))
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(count: int, start: int = 0) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("名单")
    sheet.append(HEADINGS)
    for row in rows(count, start):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
