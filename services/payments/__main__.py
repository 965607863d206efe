from services.payments.app import spec
from services.payments.migrate import migrate
from shared.service import serve

serve(spec(), migrate)
