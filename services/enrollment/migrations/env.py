from services.enrollment.models import Base
from shared.migrate import run_env

run_env(Base.metadata)
