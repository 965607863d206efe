from pathlib import Path

from services.notifications.app import spec
from shared.service import serve

serve(spec(), Path(__file__).parent / "migrations")
