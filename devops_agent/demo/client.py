"""The demo's side of the HTTP API: the webhook as Alertmanager sends it, the run, its live
events (Server-Sent Events), the approval request and the decision."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from devops_agent.demo.image import DemoError

# The shape of a notification that a real Alertmanager 0.25 sent (tests/fixtures/alertmanager-0.25/
# firing.json), re-aimed at the demo's service by `alert_payload`.
FIRING: dict[str, Any] = {
    "receiver": "agent",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ServiceDown", "severity": "critical"},
            "annotations": {},
            "startsAt": "",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
            "fingerprint": "",
        }
    ],
    "groupLabels": {"alertname": "ServiceDown"},
    "commonLabels": {"alertname": "ServiceDown", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "version": "4",
    "groupKey": "",
    "truncatedAlerts": 0,
}


def alert_payload(service: str) -> dict[str, Any]:
    """A firing ServiceDown notification for `service`, with an alert identity of its own."""
    data = copy.deepcopy(FIRING)
    labels = {"service": service, "job": service, "instance": f"{service}:8080"}
    annotations = {
        "summary": f"{service} is down",
        "description": f"{service} has failed its health probe",
    }
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for alert in data["alerts"]:
        alert["labels"].update(labels)
        alert["annotations"] = dict(annotations)
        alert["startsAt"] = now
        alert["fingerprint"] = secrets.token_hex(8)
    data["commonLabels"].update(labels)
    data["groupLabels"]["service"] = service
    data["commonAnnotations"] = dict(annotations)
    data["groupKey"] = f'{{}}:{{alertname="ServiceDown", service="{service}"}}'
    return data


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a run: `update` (a node finished), `interrupt`, `status`,
    `state` (the whole run) or `end`; `keepalive` for the stream's keepalive comments."""

    name: str
    data: dict[str, Any]


class AgentClient:
    """A running devops-agent, as the demo uses it."""

    def __init__(self, url: str, token: str, webhook_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.webhook_token = webhook_token
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, read=60.0),
            trust_env=False,
        )

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code == 401:
            raise DemoError(f"{what}: the service at {self.url} refused the token (401)")
        if response.status_code >= 400:
            raise DemoError(f"{what}: {response.status_code} {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    def status(self) -> dict[str, Any]:
        """GET /status: also proves the token is right."""
        return self._check(self.http.get("/status"), "GET /status")

    def has_console(self) -> bool:
        """Whether the service has the web console (`/ui`)."""
        try:
            return self.http.get("/ui").status_code < 400
        except httpx.HTTPError:
            return False

    def send_alert(self, payload: dict[str, Any]) -> str:
        """POST the notification to the webhook, as Alertmanager does; the run id."""
        headers = {"Authorization": f"Bearer {self.webhook_token}"} if self.webhook_token else {}
        response = httpx.post(
            f"{self.url}/webhook/alerts", json=payload, headers=headers, timeout=30, trust_env=False
        )
        if response.status_code == 401:
            raise DemoError(
                "the webhook needs WEBHOOK_TOKEN: set it (environment or .env) as the service has it"
            )
        runs = self._check(response, "POST /webhook/alerts").get("runs") or []
        if not runs:
            raise DemoError("the webhook started no run")
        return str(runs[0]["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"/runs/{run_id}"), f"GET /runs/{run_id}")

    def nodes_done(self, run_id: str) -> list[str]:
        """The nodes the run has finished so far, in order (GET /runs/{id}/history)."""
        history = self._check(self.http.get(f"/runs/{run_id}/history"), "GET history")
        names: list[str] = []
        for checkpoint in history.get("checkpoints") or []:
            for name in str(checkpoint.get("node") or "").split(","):
                if name and not name.startswith("__") and name not in ("input", "update"):
                    names.append(name)
        return names

    def approval_request(self, run_id: str) -> dict[str, Any] | None:
        """What the run asks a person (GET /approvals, page by page until found)."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = self._check(self.http.get("/approvals", params=params), "GET /approvals")
            for item in page.get("approvals") or []:
                if item.get("run_id") == run_id:
                    found: dict[str, Any] = item
                    return found
            cursor = page.get("next")
            if not cursor:
                return None

    def decide(
        self, run_id: str, decision: str, approver: str, request_id: str | None = None
    ) -> None:
        # The approver is the user of the token (the service refuses another name): `approver`
        # goes into the comment only.
        body: dict[str, Any] = {
            "decision": decision,
            "comment": f"decided by devops-agent demo ({approver})",
        }
        if request_id:
            body["request_id"] = request_id
        response = self.http.post(f"/runs/{run_id}/resume", json=body)
        if response.status_code == 409:
            raise DemoError(f"run {run_id} is no longer waiting: {response.json().get('detail')}")
        self._check(response, f"POST /runs/{run_id}/resume")

    def events(self, run_id: str) -> Iterator[Event]:
        """GET /runs/{id}/events: the run's events as they come, until the stream ends."""
        with self.http.stream("GET", f"/runs/{run_id}/events") as response:
            if response.status_code != 200:
                response.read()
                self._check(response, f"GET /runs/{run_id}/events")
            name, data = "message", list[str]()
            for line in response.iter_lines():
                if not line:  # a blank line ends an event
                    if data:
                        yield Event(name, json.loads("\n".join(data)))
                    name, data = "message", []
                elif line.startswith(":"):  # a keepalive: lets the caller look at its clock
                    yield Event("keepalive", {})
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
