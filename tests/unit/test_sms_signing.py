"""The SMS adapters sign as the providers document (services/notifications/sms.py).

The expected values are the providers' own worked examples: Aliyun's "签名机制" page (RPC, ECS DescribeRegions
with AccessKeyId ``testid`` and secret ``testsecret``, its StringToSign and Signature ``OLeaidS1JvxuMvnyHOwuJ+uX5qY=``)
and Tencent Cloud's "签名方法 v3" page (CVM DescribeInstances at timestamp 1551113065 with the documented EXAMPLE
keys: payload hash ``35e9c5b0…``, signature ``72e494ea…``). The SendSms requests are then checked against an
independent recomputation from the documented steps with fixed inputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest

from services.notifications.sms import (
    AliyunSms,
    SmsError,
    TencentSms,
    aliyun_signature,
    aliyun_string_to_sign,
    percent_encode,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)

ALIYUN_EXAMPLE = {
    "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
}


def test_aliyun_percent_encoding_follows_the_documented_rules() -> None:
    assert percent_encode("a-_.~Z9") == "a-_.~Z9"
    assert percent_encode(" ") == "%20" and percent_encode("*") == "%2A" and percent_encode("~") == "~"
    assert percent_encode('"') == "%22" and percent_encode("/") == "%2F" and percent_encode("+") == "%2B"
    assert percent_encode("互") == "%E4%BA%92"


def test_aliyun_worked_example_from_the_signature_mechanism_page() -> None:
    assert aliyun_string_to_sign("GET", ALIYUN_EXAMPLE) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
    assert aliyun_signature("GET", ALIYUN_EXAMPLE, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # Signature itself is never part of what is signed.
    assert aliyun_signature("GET", {**ALIYUN_EXAMPLE, "Signature": "x"}, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_send_sms_request_is_signed_over_every_parameter() -> None:
    sms = AliyunSms("https://dysmsapi.aliyuncs.com/", "LTAI5tExampleId", "ExampleSecret", "职工医疗互助", "SMS_1234")
    now = datetime(2026, 11, 23, 8, 30, 5, tzinfo=UTC)
    req = sms.build("13712345678", "补助 1260.00 元已转入您的银行账户。", "payment_paid", now=now, nonce="n-1")
    assert req.method == "POST" and req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    sent = dict(parse_qsl(req.body.decode(), keep_blank_values=True))
    assert sent["Action"] == "SendSms" and sent["Version"] == "2017-05-25" and sent["PhoneNumbers"] == "13712345678"
    assert sent["Timestamp"] == "2026-11-23T08:30:05Z" and sent["SignatureNonce"] == "n-1"
    assert json.loads(sent["TemplateParam"]) == {"text": "补助 1260.00 元已转入您的银行账户。"}
    # Recomputed here from the documented steps, independently of the adapter's helpers.
    from urllib.parse import quote

    def enc(v: str) -> str:
        return quote(v, safe="").replace("%7E", "~")

    rest = {k: v for k, v in sent.items() if k != "Signature"}
    canonical = "&".join(f"{enc(k)}={enc(rest[k])}" for k in sorted(rest))
    to_sign = "POST&%2F&" + enc(canonical)
    expected = base64.b64encode(hmac.new(b"ExampleSecret&", to_sign.encode(), hashlib.sha1).digest()).decode()
    assert sent["Signature"] == expected


TENCENT_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


def test_tencent_worked_example_from_the_signature_v3_page() -> None:
    assert hashlib.sha256(TENCENT_PAYLOAD).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    canonical = tc3_canonical_request("POST", "cvm.tencentcloudapi.com", "application/json; charset=utf-8",
                                      TENCENT_PAYLOAD)
    assert canonical == ("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
                         "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    to_sign = tc3_string_to_sign(canonical, 1551113065, "cvm")
    assert to_sign.split("\n")[:3] == ["TC3-HMAC-SHA256", "1551113065", "2019-02-25/cvm/tc3_request"]
    assert tc3_signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", to_sign, 1551113065, "cvm") == (
        "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    assert tc3_authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                             service="cvm", host="cvm.tencentcloudapi.com",
                             content_type="application/json; charset=utf-8", payload=TENCENT_PAYLOAD,
                             timestamp=1551113065) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_tencent_send_sms_request_carries_the_documented_headers_and_signature() -> None:
    sms = TencentSms("https://sms.tencentcloudapi.com/", "AKIDexample", "secretExample", "1400000000",
                     "职工医疗互助", "100001")
    now = datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC)
    req = sms.build("13712345678", "您的补助申请已批准。", "claim_approved", now=now, nonce="n")
    body = json.loads(req.body)
    assert body["PhoneNumberSet"] == ["+8613712345678"] and body["SmsSdkAppId"] == "1400000000"
    assert body["TemplateId"] == "100001" and body["TemplateParamSet"] == ["您的补助申请已批准。"]
    h = req.headers
    assert h["X-TC-Action"] == "SendSms" and h["X-TC-Version"] == "2021-01-11" and h["X-TC-Region"] == "ap-guangzhou"
    ts = int(now.timestamp())
    assert h["X-TC-Timestamp"] == str(ts)
    # Independent recomputation of the documented steps (the date is the UTC date of the timestamp).
    canonical = "\n".join(["POST", "/", "", "content-type:application/json; charset=utf-8\n"
                           "host:sms.tencentcloudapi.com\n", "content-type;host", hashlib.sha256(req.body).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(ts), "2026-11-23/sms/tc3_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = b"TC3secretExample"
    for part in ("2026-11-23", "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert h["Authorization"] == ("TC3-HMAC-SHA256 Credential=AKIDexample/2026-11-23/sms/tc3_request, "
                                  f"SignedHeaders=content-type;host, Signature={signature}")


def test_an_answer_not_shaped_as_the_provider_documents_is_a_failed_send_never_a_crash() -> None:
    aliyun = AliyunSms("https://dysmsapi.aliyuncs.com/", "LTAI5tExampleId", "ExampleSecret", "职工医疗互助", "SMS_1")
    tencent = TencentSms("https://sms.tencentcloudapi.com/", "AKIDexample", "secretExample", "1400000000",
                         "职工医疗互助", "100001")
    odd = ["[1, 2]", '"OK"', "5", "null", '{"Response": 5}', '{"Response": {"Error": "x"}}',
           '{"Response": {"SendStatusSet": [5]}}', '{"Response": {"SendStatusSet": {"a": 1}}}', "<html>502</html>"]
    for provider in (aliyun, tencent):
        for text in odd:
            with pytest.raises(SmsError):
                provider.check(httpx.Response(200, text=text))
    assert aliyun.check(httpx.Response(200, json={"Code": "OK", "BizId": "900619746936498440^0"})) == \
        "900619746936498440^0"
    assert tencent.check(httpx.Response(200, json={"Response": {"SendStatusSet": [
        {"Code": "Ok", "SerialNo": "5000:1045710669157053657849499619"}]}})) == "5000:1045710669157053657849499619"
