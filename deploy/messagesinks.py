"""Where messages go on a developer's machine: a real SMTP server (aiosmtpd) and a local SMS endpoint, both
recording what they receive, so every message the notifications service sends can be seen.

- :class:`MailSink`: an aiosmtpd server; each message is kept in memory and written to ``<dir>/<n>.eml``.
- :class:`SmsSink`: a small HTTP server that speaks the three request shapes notifications can send
  (services/notifications/sms.py): ``local`` JSON at ``/sms``, Aliyun's form-encoded RPC ``SendSms`` and
  Tencent's JSON ``SendSms`` with TC3 headers. Given the credentials, it checks the signature as the provider
  would (a request signed wrong is refused with the provider's error code). Each message is appended to
  ``<dir>/sms.jsonl``. ``fail_with`` makes it refuse everything (the retry tests).

`make run` starts both (deploy/localstack.py) on 127.0.0.1:8025 (SMTP) and :8026 (SMS).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from services.notifications.sms import aliyun_signature, tc3_authorization

RECEIPT_DELAY_S = 0.25  # a receipt is sent this long after its SMS (the service records the SMS as sent after replying)
RECEIPT_TRIES = 40


class MailSink:
    def __init__(self, port: int, directory: Path | None = None, host: str = "127.0.0.1") -> None:
        self.port, self.directory = port, directory
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname=host, port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        message = message_from_bytes(data, policy=policy.default)
        with self._lock:
            self.messages.append(message)
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                (self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml").write_bytes(data)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class SmsSink:
    def __init__(self, port: int, directory: Path | None = None, *, host: str = "127.0.0.1",
                 secrets: dict[str, str] | None = None, fail_with: int | None = None,
                 receipts_url: str | None = None) -> None:
        self.port, self.directory, self.secrets, self.fail_with = port, directory, secrets or {}, fail_with
        # Where to report each local SMS as delivered, as a provider's callback would
        # (services/notifications/receipts.py); None: no receipts.
        self.receipts_url = receipts_url
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._receipts_waiting: list[str] = []  # provider references of SMS whose receipt is not yet sent
        self._receipts_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the service sends its messages on one connection

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
                body = self.rfile.read(length)
                status, answer = sink.handle(self.path, dict(self.headers.items()), body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"sms-sink-{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("x-tc-action") == "SendSms":
            return self._tencent(lower, body)
        if lower.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._aliyun(body)
        if self.fail_with:
            return self.fail_with, {"error": "local SMS endpoint told to fail"}
        try:
            msg = json.loads(body)
            phone, text = str(msg["phone"]), str(msg["text"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "expected JSON {phone, text, template}"}
        ref = self._record("local", phone, text, msg.get("template", ""))
        if self.receipts_url:
            self._report_delivered(ref)
        return 200, {"id": ref}

    def _report_delivered(self, ref: str) -> None:
        """Queue the delivery receipt of one local SMS; the receipts thread sends it (see ``_receipts``)."""
        with self._lock:
            self._receipts_waiting.append(ref)
            if self._receipts_thread is None:
                self._receipts_thread = threading.Thread(target=self._receipts, name="sms-receipts", daemon=True)
                self._receipts_thread.start()

    def _receipts(self) -> None:
        """Send the queued receipts, as a provider's callback would, once the service has had a moment to record
        each SMS as sent (it records the provider's answer after this endpoint replies). One thread and one
        HTTP connection for all: the receipts queued in a quarter of a second go in one request (up to the
        endpoint's 1,000). The service answers how many it matched; a batch not wholly matched yet is sent again
        a little later (a receipt of an SMS already marked is not counted twice), up to 40 times."""
        assert self.receipts_url is not None
        batches: list[tuple[float, list[str], int, int]] = []  # (when, references, tries, matched so far)
        with httpx.Client(timeout=5) as client:
            while not self._stopping.wait(RECEIPT_DELAY_S):
                with self._lock:
                    waiting, self._receipts_waiting = self._receipts_waiting, []
                now = time.monotonic()
                batches += [(now + RECEIPT_DELAY_S, waiting[i:i + 1000], 0, 0) for i in range(0, len(waiting), 1000)]
                again = []
                for when, refs, tries, matched in batches:
                    if when > now:
                        again.append((when, refs, tries, matched))
                        continue
                    matched += self._post(client, refs)
                    if matched < len(refs) and tries + 1 < RECEIPT_TRIES:
                        again.append((now + RECEIPT_DELAY_S, refs, tries + 1, matched))
                batches = again

    def _post(self, client: httpx.Client, refs: list[str]) -> int:
        """How many of these receipts the service matched to an SMS it sent (0 when it could not be reached)."""
        assert self.receipts_url is not None
        try:
            r = client.post(self.receipts_url, json=[{"id": ref, "status": "delivered"} for ref in refs])
            return int(r.json().get("delivered") or 0) if r.status_code == 200 else 0
        except (httpx.HTTPError, ValueError):
            return 0

    def _aliyun(self, body: bytes) -> tuple[int, dict[str, Any]]:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if self.fail_with:
            return self.fail_with, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "local endpoint told to fail"}
        secret = self.secrets.get(params.get("AccessKeyId", ""))
        if secret is not None and aliyun_signature("POST", params, secret) != params.get("Signature"):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
        text = json.loads(params.get("TemplateParam") or "{}").get("text", "")
        ref = self._record("aliyun", params.get("PhoneNumbers", ""), text, params.get("OutId", ""), params)
        return 200, {"Code": "OK", "Message": "OK", "BizId": ref, "RequestId": str(uuid.uuid4())}

    def _tencent(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())
        if self.fail_with:
            return 200, {"Response": {"Error": {"Code": "InternalError", "Message": "local endpoint told to fail"},
                                      "RequestId": request_id}}
        auth = headers.get("authorization", "")
        secret_id = auth.partition("Credential=")[2].partition("/")[0]
        secret = self.secrets.get(secret_id)
        if secret is not None:
            expected = tc3_authorization(secret_id, secret, service="sms", host=headers.get("host", ""),
                                         content_type=headers.get("content-type", ""), payload=body,
                                         timestamp=int(headers.get("x-tc-timestamp", "0")))
            if expected != auth:
                return 200, {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                    "Message": "signature mismatch"}, "RequestId": request_id}}
        msg = json.loads(body)
        phone = (msg.get("PhoneNumberSet") or [""])[0]
        ref = self._record("tencent", phone, (msg.get("TemplateParamSet") or [""])[0], msg.get("SessionContext", ""),
                           msg)
        return 200, {"Response": {"SendStatusSet": [{"SerialNo": ref, "PhoneNumber": phone, "Code": "Ok",
                                                     "Message": "send success"}], "RequestId": request_id}}

    def _record(self, provider: str, phone: str, text: str, template: str,
                request: dict[str, Any] | None = None) -> str:
        ref = uuid.uuid4().hex
        entry = {"id": ref, "provider": provider, "phone": phone, "text": text, "template": template,
                 "received_at": datetime.now(UTC).isoformat(), "request": request or {}}
        with self._lock:
            self.received.append(entry)
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                with open(self.directory / "sms.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return ref

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
