from services.enrollment.app import spec
from services.enrollment.migrate import migrate
from shared.service import serve

serve(spec(), migrate)
