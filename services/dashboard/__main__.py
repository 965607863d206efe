from services.dashboard.app import serve

serve()
