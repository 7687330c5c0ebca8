"""The HTTP service: FastAPI app, routes, auth and the run manager."""
