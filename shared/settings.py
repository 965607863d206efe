"""Settings, one pydantic-settings class per service, each with its own environment prefix.

``LOCAL_STACK=true`` (set by ``make run`` and the tests) allows the development defaults below. Anywhere
else a default or missing secret refuses to start: a production service must be given its own.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only defaults: accepted only while local_stack is true.
DEV_JWT_SECRET = "huzhu-local-stack-only-jwt-secret-0123456789"
DEV_ADMIN_PASSWORD = "admin"


class InsecureSettings(RuntimeError):
    """A secret is missing or still the development default outside the local stack."""


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses set ``model_config`` with their own env prefix."""

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000
    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret",)

    local_stack: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = ""
    db_pool_size: int = 10
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Tansu (the local broker) answers InitProducerId with UnknownError: off there, on for Apache Kafka.
    kafka_enable_idempotence: bool = False
    kafka_partitions: int = 6
    kafka_replication: int = 1
    relay_interval_ms: int = 200
    relay_batch_size: int = 200
    # How often the broker watch checks topics, the cluster id and end offsets, and records what consumers
    # confirmed (shared.broker_watch); how long an unknown reference is answered 409 rather than 404.
    broker_watch_interval_ms: int = 2000
    reference_grace_seconds: int = 600
    jwt_secret: str = ""
    jwt_issuer: str = "huzhu"
    log_level: str = "INFO"
    log_json: bool = True
    # Fault injection for the delivery tests ("after_db_commit:<event type>"); honoured in the local stack only.
    fault_point: str = ""
    # Request bounds (shared/guards.py), enforced before parsing and authentication: a body over its route's
    # limit is a 413. JSON and forms by default; the routes that take more name their limit in ServiceSpec.
    max_body_bytes: int = 1024 * 1024
    max_roster_bytes: int = 20 * 1024 * 1024  # roster files (CSV/XLSX) and roster JSON
    max_document_bytes: int = 10 * 1024 * 1024  # one claim document (the multipart envelope gets 64 KiB more)
    # bureau settlement feeds: NDJSON and files are streamed (memory stays flat), so they may be large; a JSON
    # array is read whole and stays within 64 MiB (shared/guards.py InputGuard.max_buffered_bytes)
    max_feed_bytes: int = 8 * 1024 * 1024 * 1024
    max_json_depth: int = 64

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> ServiceSettings:
        if self.port == 0:
            self.port = self.default_port
        if self.local_stack:
            if not self.jwt_secret:
                self.jwt_secret = DEV_JWT_SECRET
            self._local_defaults()
            return self
        missing = [name for name in self.secret_fields if not getattr(self, name)]
        weak = [name for name in self.secret_fields if getattr(self, name) in (DEV_JWT_SECRET,
                                                                               DEV_ADMIN_PASSWORD)]
        if missing or weak or not self.database_url:
            raise InsecureSettings(
                f"{self.service_name}: outside the local stack these must be set to real values: "
                + ", ".join(missing + weak + ([] if self.database_url else ["database_url"]))
            )
        if len(self.jwt_secret) < 32:
            raise InsecureSettings(f"{self.service_name}: jwt_secret must be at least 32 characters")
        return self

    def _local_defaults(self) -> None:
        """Hook for a service's own local defaults."""


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")
    service_name: ClassVar[str] = "enrollment"
    default_port: ClassVar[int] = 8001
    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret", "admin_password")

    admin_password: str = ""
    # Access tokens are short-lived: log in again after 30 minutes (deploy/client.py does so by itself).
    token_ttl_seconds: int = 30 * 60
    # Login lockout: this many wrong passwords for one username within the window lock it (429, Retry-After).
    login_max_failures: int = 10
    login_window_seconds: int = 15 * 60
    password_min_length: int = 10

    def _local_defaults(self) -> None:
        if not self.admin_password:
            self.admin_password = DEV_ADMIN_PASSWORD


class ClaimsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore")
    service_name: ClassVar[str] = "claims"
    default_port: ClassVar[int] = 8002


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")
    service_name: ClassVar[str] = "payments"
    default_port: ClassVar[int] = 8003

    # The fund's own bank account, the debtor of every payout file. The default account number is
    # illustrative: outside the local stack no batch can be cut with it (services/payments/fund.py).
    fund_name: str = "云南省职工医疗互助中心"
    fund_account: str = "2502041009024800001"
    fund_bank: str = "中国工商银行昆明分行营业部"
    # An instruction whose payee account changed within this many days is held until finance confirms it.
    account_change_hold_days: int = Field(default=7, ge=0, le=365)


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")
    service_name: ClassVar[str] = "notifications"
    default_port: ClassVar[int] = 8004

    # SMS (services/notifications/sms.py): local = the recording endpoint of `make run` (deploy/messagesinks.py);
    # aliyun / tencent = the provider's HTTP API, signed as it documents. The endpoint URL may be overridden.
    sms_provider: Literal["local", "aliyun", "tencent"] = "local"
    sms_endpoint: str = ""
    sms_access_key_id: str = ""  # Aliyun AccessKeyId / Tencent SecretId
    sms_access_key_secret: str = ""  # Aliyun AccessKeySecret / Tencent SecretKey
    sms_sign_name: str = "职工医疗互助"
    sms_template_code: str = ""  # Aliyun TemplateCode / Tencent TemplateId: one template with a {text} variable
    sms_app_id: str = ""  # Tencent SmsSdkAppId
    sms_region: str = ""
    # Delivery receipts (services/notifications/receipts.py): the provider calls back
    # POST /api/v1/sms/receipts/{token}; empty turns receipts off (the route answers 404).
    sms_receipt_token: str = ""
    # E-mail through SMTP (aiosmtplib); `make run` starts a local aiosmtpd server (deploy/messagesinks.py).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_sender: str = "职工医疗互助 <noreply@huzhu.local>"
    # The delivery worker (services/notifications/delivery.py): every interval it sends what is due; a failed
    # attempt is retried after backoff * 2^(attempts-1) seconds, up to max_attempts, then the delivery is failed.
    delivery_interval_s: float = Field(default=1.0, gt=0)
    delivery_backoff_s: float = Field(default=5.0, ge=0)
    delivery_max_attempts: int = Field(default=5, ge=1, le=50)
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    # Messages in flight at once: a provider answers in tens to hundreds of milliseconds, so one at a time would
    # cap a worker near 10 SMS a second, below a busy day's claims (issue #15).
    delivery_concurrency: int = Field(default=8, ge=1, le=64)

    def _local_defaults(self) -> None:
        if self.sms_provider == "local" and not self.sms_endpoint:
            self.sms_endpoint = "http://127.0.0.1:8026/sms"

    @model_validator(mode="after")
    def _sms_credentials(self) -> NotificationsSettings:
        if self.sms_provider != "local" and not (self.sms_access_key_id and self.sms_access_key_secret):
            raise InsecureSettings(f"notifications: sms_provider {self.sms_provider} needs sms_access_key_id "
                                   "and sms_access_key_secret")
        return self


SETTINGS_BY_SERVICE: dict[str, type[ServiceSettings]] = {
    "enrollment": EnrollmentSettings,
    "claims": ClaimsSettings,
    "payments": PaymentsSettings,
    "notifications": NotificationsSettings,
}
