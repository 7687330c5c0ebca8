"""Alertmanager's API v2, asked whether alerts still fire (ALERTMANAGER_URL).

Only recorded on the run (`validation.alerts_cleared`): Alertmanager resolves an alert a group
interval or more after its cause went away, so it never decides whether a fix held.
"""

from __future__ import annotations

import httpx

TIMEOUT = 5.0


async def still_firing(base_url: str, fingerprints: list[str]) -> bool | None:
    """Whether any of these alerts is active in Alertmanager; None when it cannot say."""
    if not fingerprints:
        return None
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
            response = await client.get(
                base_url.rstrip("/") + "/api/v2/alerts",
                params={"active": "true", "silenced": "true", "inhibited": "true"},
            )
        if response.status_code != 200:
            return None
        active = {str(a.get("fingerprint")) for a in response.json() if isinstance(a, dict)}
    except (httpx.HTTPError, ValueError):
        return None
    return any(f in active for f in fingerprints)
