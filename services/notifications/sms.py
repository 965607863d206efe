"""SMS through a provider's HTTP API: Aliyun SMS (dysmsapi, RPC style) and Tencent Cloud SMS (API 3.0), and the
``local`` provider that posts plain JSON to the local endpoint of `make run` (deploy/messagesinks.py).

Each adapter builds the request exactly as its provider documents it (the signing below is pure and tested in
tests/unit/test_sms_signing.py), sends it with httpx, and reads the provider's answer: a refusal raises
:class:`SmsError` with the provider's code and message, which becomes the delivery's ``last_error``.

- Aliyun, "签名机制" (RPC, SignatureVersion 1.0): sort every parameter but ``Signature`` by name,
  percent-encode names and values (RFC 3986: ``A-Z a-z 0-9 - _ . ~`` kept, space ``%20``, ``*`` ``%2A``),
  join as ``k=v&...``, then StringToSign = ``METHOD&%2F&percentEncode(canonicalised query)``;
  Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)).
- Tencent, "签名方法 v3" (TC3-HMAC-SHA256): CanonicalRequest = method, URI ``/``, query, canonical headers
  (``content-type`` and ``host``, lower-case, trimmed), signed header names, hex SHA-256 of the body;
  StringToSign = ``TC3-HMAC-SHA256``, timestamp, ``date/service/tc3_request``, hex SHA-256 of the canonical request;
  the key is HMAC-SHA256 chained from ``"TC3" + SecretKey`` over the UTC date, the service and ``tc3_request``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx


class SmsError(Exception):
    """The provider refused the message or could not be reached."""


@dataclass(frozen=True)
class SmsRequest:
    """One HTTP request, as sent: what the unit tests check and the local endpoint records."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class SmsProvider(Protocol):
    @property
    def name(self) -> str: ...

    def build(self, phone: str, text: str, template: str, *, now: datetime, nonce: str) -> SmsRequest: ...

    def check(self, response: httpx.Response) -> str: ...


# --- Aliyun (dysmsapi 2017-05-25, RPC signature 1.0) ------------------------------------------------------
def percent_encode(value: str) -> str:
    """Aliyun's percentEncode: UTF-8, RFC 3986 unreserved characters kept, everything else %XY (space %20)."""
    return quote(value, safe="-_.~")


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}"
                         for k in sorted(params) if k != "Signature")
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class AliyunSms:
    endpoint: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    region: str = "cn-hangzhou"
    name: str = "aliyun"

    def params(self, phone: str, text: str, template: str, *, now: datetime, nonce: str) -> dict[str, str]:
        return {
            "AccessKeyId": self.access_key_id, "Action": "SendSms", "Format": "JSON", "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce, "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
            "PhoneNumbers": phone, "SignName": self.sign_name, "TemplateCode": self.template_code,
            "TemplateParam": json.dumps({"text": text}, ensure_ascii=False), "OutId": template,
        }

    def build(self, phone: str, text: str, template: str, *, now: datetime, nonce: str) -> SmsRequest:
        params = self.params(phone, text, template, now=now, nonce=nonce)
        params["Signature"] = aliyun_signature("POST", params, self.access_key_secret)
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode()
        return SmsRequest("POST", self.endpoint, {"Content-Type": "application/x-www-form-urlencoded"}, body)

    def check(self, response: httpx.Response) -> str:
        try:
            answer = response.json()
        except ValueError:
            raise SmsError(f"aliyun HTTP {response.status_code}: {response.text[:200]}") from None
        if not isinstance(answer, dict):  # an answer that is JSON but not an object is not Aliyun's
            raise SmsError(f"aliyun HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200 or answer.get("Code") != "OK":
            raise SmsError(f"aliyun {answer.get('Code', response.status_code)}: {answer.get('Message', '')}"[:500])
        return str(answer.get("BizId", ""))


# --- Tencent Cloud (sms 2021-01-11, TC3-HMAC-SHA256) ------------------------------------------------------
def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_canonical_request(method: str, host: str, content_type: str, payload: bytes, query: str = "") -> str:
    headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    return "\n".join([method, "/", query, headers, "content-type;host", _sha256_hex(payload)])


def tc3_string_to_sign(canonical_request: str, timestamp: int, service: str) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return "\n".join(["TC3-HMAC-SHA256", str(timestamp), f"{day}/{service}/tc3_request",
                      _sha256_hex(canonical_request.encode())])


def tc3_signature(secret_key: str, string_to_sign: str, timestamp: int, service: str) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    key = _hmac256(_hmac256(_hmac256(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(secret_id: str, secret_key: str, *, service: str, host: str, content_type: str,
                      payload: bytes, timestamp: int, method: str = "POST") -> str:
    canonical = tc3_canonical_request(method, host, content_type, payload)
    signature = tc3_signature(secret_key, tc3_string_to_sign(canonical, timestamp, service), timestamp, service)
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{day}/{service}/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}")


@dataclass(frozen=True)
class TencentSms:
    endpoint: str
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    name: str = "tencent"
    host: str = "sms.tencentcloudapi.com"  # the Host the signature covers (the endpoint may be a local one)

    def build(self, phone: str, text: str, template: str, *, now: datetime, nonce: str) -> SmsRequest:
        body = json.dumps({
            "PhoneNumberSet": [phone if phone.startswith("+") else f"+86{phone}"], "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name, "TemplateId": self.template_id, "TemplateParamSet": [text],
            "SessionContext": template,
        }, ensure_ascii=False, separators=(",", ":")).encode()
        content_type = "application/json; charset=utf-8"
        timestamp = int(now.timestamp())
        authorization = tc3_authorization(self.secret_id, self.secret_key, service="sms", host=self.host,
                                          content_type=content_type, payload=body, timestamp=timestamp)
        headers = {"Authorization": authorization, "Content-Type": content_type, "Host": self.host,
                   "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11", "X-TC-Timestamp": str(timestamp),
                   "X-TC-Region": self.region}
        return SmsRequest("POST", self.endpoint, headers, body)

    def check(self, response: httpx.Response) -> str:
        try:
            answer = response.json().get("Response", {})
        except (ValueError, AttributeError):
            raise SmsError(f"tencent HTTP {response.status_code}: {response.text[:200]}") from None
        try:  # an answer not shaped as Tencent documents it is a failed send, never a crash of the worker
            if "Error" in answer:
                error = answer["Error"]
                raise SmsError(f"tencent {error.get('Code')}: {error.get('Message', '')}"[:500])
            statuses = answer.get("SendStatusSet") or [{}]
            if response.status_code != 200 or statuses[0].get("Code") != "Ok":
                raise SmsError(f"tencent {statuses[0].get('Code', response.status_code)}: "
                               f"{statuses[0].get('Message', '')}"[:500])
            return str(statuses[0].get("SerialNo", ""))
        except (AttributeError, TypeError, KeyError, IndexError):
            raise SmsError(f"tencent HTTP {response.status_code}: {response.text[:200]}") from None


# --- the local endpoint of `make run` ---------------------------------------------------------------------
@dataclass(frozen=True)
class LocalSms:
    endpoint: str
    name: str = "local"

    def build(self, phone: str, text: str, template: str, *, now: datetime, nonce: str) -> SmsRequest:
        body = json.dumps({"phone": phone, "text": text, "template": template, "id": nonce},
                          ensure_ascii=False).encode()
        return SmsRequest("POST", self.endpoint, {"Content-Type": "application/json; charset=utf-8"}, body)

    def check(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise SmsError(f"local HTTP {response.status_code}: {response.text[:200]}")
        return str(response.json().get("id", ""))


async def send_sms(provider: SmsProvider, client: httpx.AsyncClient, phone: str, text: str, template: str) -> str:
    """Send one message; the provider's reference on success, :class:`SmsError` otherwise."""
    request = provider.build(phone, text, template, now=datetime.now(UTC), nonce=str(uuid.uuid4()))
    headers = {k: v for k, v in request.headers.items() if k != "Host"}
    if request.headers.get("Host") and urlsplit(request.url).hostname != request.headers["Host"]:
        headers["Host"] = request.headers["Host"]  # a local stand-in endpoint checks the signature as signed
    try:
        response = await client.request(request.method, request.url, headers=headers, content=request.body)
    except httpx.HTTPError as exc:
        raise SmsError(f"{provider.name}: {type(exc).__name__}: {exc}"[:500]) from exc
    return provider.check(response)


def provider_from(settings: Any) -> SmsProvider:
    """The provider the settings name (NOTIFICATIONS_SMS_PROVIDER), with its endpoint and credentials."""
    kind = settings.sms_provider
    if kind == "aliyun":
        return AliyunSms(settings.sms_endpoint or "https://dysmsapi.aliyuncs.com/", settings.sms_access_key_id,
                         settings.sms_access_key_secret, settings.sms_sign_name, settings.sms_template_code,
                         settings.sms_region or "cn-hangzhou")
    if kind == "tencent":
        return TencentSms(settings.sms_endpoint or "https://sms.tencentcloudapi.com/", settings.sms_access_key_id,
                          settings.sms_access_key_secret, settings.sms_app_id, settings.sms_sign_name,
                          settings.sms_template_code, settings.sms_region or "ap-guangzhou")
    return LocalSms(settings.sms_endpoint or "http://127.0.0.1:8026/sms")
