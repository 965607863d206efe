from pathlib import Path

from services.claims.app import spec
from shared.service import serve

serve(spec(), Path(__file__).parent / "migrations")
