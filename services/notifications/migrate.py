from pathlib import Path

from shared.migrate import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(database_url: str) -> None:
    upgrade(MIGRATIONS, database_url)
