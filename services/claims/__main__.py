from services.claims.app import spec
from services.claims.migrate import migrate
from shared.service import serve

serve(spec(), migrate)
