"""Unique, valid, made-up members in bulk for benchmarks: ID numbers of people born 1950-2008 over the real
district codes of ``deploy.people`` (python-stdnum's GB/T 2260 table), with real check digits, the sequence
digit matching the sex column; names with rare characters; Luhn-valid bank accounts; no two people alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta

from deploy.people import BANKS, GIVEN, MINORITY, REGIONS, SURNAMES
from shared.idnumber import check_digit

HEADINGS = ["姓名", "身份证号码", "手机号码", "性别", "人员类别", "银行账号", "开户银行", "参保险种"]
INSURANCE = "基本医疗保险;大病补充医疗保险"
DISTRICTS = list(dict.fromkeys(REGIONS))
FIRST_BIRTH, BIRTH_DAYS = date(1950, 1, 1), (date(2008, 12, 31) - date(1950, 1, 1)).days + 1


def unique_certno(i: int) -> str:
    """The i-th person: district i mod the districts, then a birth date stepping through 1950-2008 by a prime
    number of days (so neighbours differ in age), then a sequence number, men and women in turn; unique for any i below 3 * 10**8."""
    district, rest = DISTRICTS[i % len(DISTRICTS)], i // len(DISTRICTS)
    born = FIRST_BIRTH + timedelta(days=(rest * 7919) % BIRTH_DAYS)
    sequence = 2 * (rest // BIRTH_DAYS % 499) + 1 + rest % 2  # odd for men, even for women
    body = f"{district}{born:%Y%m%d}{sequence:03d}"
    return body + check_digit(body)


def name(i: int) -> str:
    if i % 50 == 7:
        return MINORITY[i // 50 % len(MINORITY)]
    return SURNAMES[i % len(SURNAMES)] + GIVEN[(i // 7) % len(GIVEN)]


def account(i: int) -> str:
    from services.enrollment.domain.roster_rules import luhn_ok

    body = f"622202{i:012d}"
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def rows(count: int, start: int = 0) -> Iterator[list[str]]:
    for i in range(start, start + count):
        sex = "男" if int(unique_certno(i)[16]) % 2 else "女"
        yield [name(i), unique_certno(i),
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
