"""The service's own tables: incidents, the action ledger and learned outcomes."""
