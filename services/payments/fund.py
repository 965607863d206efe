"""The fund's own bank account, the debtor of every payout file.

``shared/settings.py`` belongs to every service, so payments reads these few values itself, from the same
``PAYMENTS_`` environment prefix: ``PAYMENTS_FUND_NAME``, ``PAYMENTS_FUND_ACCOUNT``, ``PAYMENTS_FUND_BANK``.
The defaults are for the local stack only (the account number is illustrative): outside it no batch can be cut
with them (a 500-class problem ``fund_account_not_configured``), so a bank never receives a file from a made-up
account. The service still starts, so a deployment without these variables fails loudly at the first cut
rather than silently at start-up.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.payments.files import Debtor

ILLUSTRATIVE_ACCOUNT = "2502041009024800001"


class FundAccountSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    fund_name: str = "云南省职工医疗互助中心"
    fund_account: str = ILLUSTRATIVE_ACCOUNT
    fund_bank: str = "中国工商银行昆明分行营业部"

    def configured(self, *, local_stack: bool) -> bool:
        return local_stack or self.fund_account != ILLUSTRATIVE_ACCOUNT

    def debtor(self) -> Debtor:
        return Debtor(name=self.fund_name, account=self.fund_account, bank_name=self.fund_bank)
