"""The events watcher's rules (devops_agent.sources.events): which engine events are faults, and
the identity of the alerts they become. Pure: the engine side is tests/server/test_events_*."""

from __future__ import annotations

from devops_agent.sources.events import (
    DIED,
    LOOPING,
    OOM,
    Death,
    Rules,
    Subject,
    docker_time,
    subject_of,
)

APP = Subject("api-1", {"devops-agent.watch": "true"})
COMPOSED = Subject(
    "shop-web-1",
    {
        "devops-agent.watch": "true",
        "com.docker.compose.service": "web",
        "com.docker.compose.project": "shop",
    },
)


def names(alerts: list) -> list[tuple[str, str]]:
    return [(a.labels["alertname"], a.status) for a in alerts]


def test_a_die_is_a_fault_unless_it_follows_a_kill_or_exits_cleanly() -> None:
    rules = Rules("engine-1", crash_loop_window=300)
    assert rules.died(APP, Death(0, 100.0), 100.0) == []
    rules.killed(APP, 200.0)
    assert rules.died(APP, Death(137, 209.0), 209.0) == []  # docker stop: TERM, then KILL at 10 s
    rules.killed(APP, 300.0)
    assert rules.died(APP, Death(3, 300.2), 300.2) == []  # a restart, whatever the exit code
    (alert,) = rules.died(APP, Death(2, 400.0), 400.0)
    assert alert.labels["alertname"] == DIED and alert.labels["exit_code"] == "2"
    assert alert.labels["service"] == alert.labels["container"] == "api-1"
    assert alert.startsAt == "1970-01-01T00:06:40.000000Z"
    # Another process watching the same engine makes the very same alert: intake dedupes.
    (twin,) = Rules("engine-1", 300).died(APP, Death(2, 400.0), 400.0)
    assert (twin.fingerprint, twin.startsAt) == (alert.fingerprint, alert.startsAt)
    assert (
        Rules("engine-2", 300).died(APP, Death(2, 400.0), 400.0)[0].fingerprint != twin.fingerprint
    )


def test_an_oom_and_the_die_after_it_are_one_alert_and_a_compose_service_is_its_target() -> None:
    rules = Rules("engine-1", crash_loop_window=300)
    (oom,) = rules.oom(COMPOSED, 50.0)
    (again,) = rules.died(COMPOSED, Death(137, 50.1, oom_killed=True), 50.1)
    assert again is oom and oom.labels["alertname"] == OOM
    assert (oom.labels["service"], oom.labels["project"]) == ("web", "shop")
    assert COMPOSED.key == "compose:shop/web"


def test_deaths_within_the_window_are_one_crash_loop_and_it_resolves_only_when_quiet() -> None:
    rules = Rules("engine-1", crash_loop_window=60)
    first = rules.died(APP, Death(4, 10.0), 10.0)
    rules.came_up(APP)
    assert names(rules.resolve("api-1", 10.5, healthy=True)) == [(DIED, "resolved")]
    second = rules.died(APP, Death(4, 12.0), 12.0)
    assert names(first) == names(second) == [(DIED, "firing")]
    assert first[0].startsAt != second[0].startsAt  # a new death, a new alert
    (loop,) = [a for a in rules.died(APP, Death(4, 15.0), 15.0) if a.status == "firing"]
    assert loop.labels["alertname"] == LOOPING
    for at in (18.0, 22.0, 30.0):
        assert rules.died(APP, Death(4, at), at) == [loop]  # duplicates: no new incident
    rules.came_up(APP)
    assert LOOPING not in [a.labels["alertname"] for a in rules.resolve("api-1", 40.0, True)]
    assert names(rules.resolve("api-1", 95.0, healthy=True)) == [(LOOPING, "resolved")]


def test_only_watched_containers_are_subjects_and_docker_times_parse() -> None:
    event = {"Actor": {"Attributes": {"name": "x", "exitCode": "1", "devops-agent.watch": "true"}}}
    subject = subject_of(event)
    assert subject is not None and subject.labels == {"devops-agent.watch": "true"}
    assert subject_of({"Actor": {"Attributes": {"name": "y"}}}) is None
    assert docker_time("0001-01-01T00:00:00Z") is None
    assert docker_time("1970-01-01T00:00:01.123456789Z") == 1.123456
