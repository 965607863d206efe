"""The fund's own bank account, the debtor of every payout file.

Read from ``PAYMENTS_FUND_NAME``, ``PAYMENTS_FUND_ACCOUNT``, ``PAYMENTS_FUND_BANK`` (shared.settings.PaymentsSettings).
The defaults are for the local stack only (the account number is illustrative): outside it no batch can be cut
with them (a 500-class problem ``fund_account_not_configured``), so a bank never receives a file from a made-up
account. The service still starts, so a deployment without these variables fails loudly at the first cut
rather than silently at start-up.
"""

from __future__ import annotations

from services.payments.files import Debtor
from shared.settings import PaymentsSettings

ILLUSTRATIVE_ACCOUNT = PaymentsSettings.model_fields["fund_account"].default


def configured(settings: PaymentsSettings) -> bool:
    return settings.local_stack or settings.fund_account != ILLUSTRATIVE_ACCOUNT


def debtor(settings: PaymentsSettings) -> Debtor:
    return Debtor(name=settings.fund_name, account=settings.fund_account, bank_name=settings.fund_bank)
