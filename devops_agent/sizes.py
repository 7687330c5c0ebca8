"""How long each stored alert field may be: one set of numbers for the payload validation
(devops_agent.alertmanager) and the columns (devops_agent.memory.runs), so that whatever intake
accepts fits its column. PostgreSQL refuses a VARCHAR value longer than its column (SQLite keeps
it), and a refused INSERT would be a 503 that Alertmanager retries forever; a value over these
sizes is a 422 instead. The migrations keep the literal numbers of their day;
tests/server/test_intake_limits.py checks that the migrated columns match these.
"""

from __future__ import annotations

FINGERPRINT = 128  # alerts.fingerprint (Alertmanager's are 16 hex digits)
ALERTNAME = 255  # alerts.alertname (the `alertname` label)
SERVICE = 255  # alerts.service, runs.service (the first target label, cut to this length)
STARTS_AT = 64  # alerts.starts_at
COUNT = 2**31 - 1  # an INTEGER column (runs.truncated_alerts) on PostgreSQL
