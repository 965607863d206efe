"""The bureau's settlement records (docs/API.md "Settlements", issue #12): the feed (reading.py streams it,
domain/feed.py checks each record, service.py stores them in batches), reversals of settlements already
claimed (reversals.py), and the look-ups intake uses (``refuse``, ``settlement_reversed``)."""

from services.claims.settlements.endpoints import router
from services.claims.settlements.reversals import is_reversal, refuse, settlement_reversed

__all__ = ["is_reversal", "refuse", "router", "settlement_reversed"]
