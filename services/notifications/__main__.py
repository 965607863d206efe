from services.notifications.app import spec
from services.notifications.migrate import migrate
from shared.service import serve

serve(spec(), migrate)
