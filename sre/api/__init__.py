"""FastAPI app factory and routers: webhook, health, metrics, runs."""
