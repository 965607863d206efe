"""The dashboard's settings (prefix ``DASHBOARD_``). It owns no database and no topic: it serves the page and
asks the four services' HTTP APIs with the caller's own token, so it needs their URLs and the JWT secret
(to refuse a bad token before fanning out). Outside the local stack a missing or development secret refuses
to start, as for the services (shared/settings.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import DEV_JWT_SECRET, InsecureSettings

UPSTREAMS = ("enrollment", "claims", "payments", "notifications")


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")
    service_name: ClassVar[str] = "dashboard"
    default_port: ClassVar[int] = 8000
    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret",)

    local_stack: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    enrollment_url: str = "http://127.0.0.1:8001"
    claims_url: str = "http://127.0.0.1:8002"
    payments_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    upstream_timeout_seconds: float = 10.0
    jwt_secret: str = ""
    jwt_issuer: str = "huzhu"
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _secrets(self) -> DashboardSettings:
        if self.local_stack:
            self.jwt_secret = self.jwt_secret or DEV_JWT_SECRET
            return self
        if not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32:
            raise InsecureSettings("dashboard: outside the local stack jwt_secret must be a real secret (>= 32)")
        return self

    def url(self, service: str) -> str:
        return str(getattr(self, f"{service}_url")).rstrip("/")
