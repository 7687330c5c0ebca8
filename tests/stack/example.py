"""The example service Prometheus scrapes: a Lab container with a metrics CGI added.

The test image (tests/support) serves only /cgi-bin/health, whose "ok" is not the Prometheus
text format. `install_metrics` writes /www/cgi-bin/metrics into the container's writable layer
(kept by `docker restart` and `docker start`, unlike the /run tmpfs that holds the faults). It
exposes `health_check_up` (the health CGI's verdict within 1 s: a hung health check reads 0)
and the memory use and limit of the container's cgroup, so `ServiceUnhealthy` and
`MemoryNearLimit` of deploy/prometheus/alerts.yml have something to read; `ServiceDown` comes
from Prometheus' own `up` when the container is gone.
"""

from __future__ import annotations

from tests.support.containers import Lab, Started

METRICS_PATH = "/cgi-bin/metrics"

# The health CGI's output goes to a file, not a pipe: a hung health check leaves a `sleep`
# behind that would hold a pipe (and this scrape) open for a minute.
METRICS_CGI = r"""#!/bin/sh
out=/tmp/health.$$
up=0
if timeout 1 /www/cgi-bin/health >"$out" 2>/dev/null; then
  case "$(head -n 1 "$out")" in "Status: 200"*) up=1 ;; esac
fi
rm -f "$out"
cg=/sys/fs/cgroup/memory
mem=$(cat $cg/memory.usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.current 2>/dev/null || echo 0)
limit=$(cat $cg/memory.limit_in_bytes 2>/dev/null || echo 0)
[ "$limit" -gt 1099511627776 ] 2>/dev/null && limit=0
printf 'Content-Type: text/plain; version=0.0.4\r\n\r\n'
echo '# HELP health_check_up 1 when the health check answers 200 within 1s.'
echo '# TYPE health_check_up gauge'
echo "health_check_up $up"
echo '# TYPE process_resident_memory_bytes gauge'
echo "process_resident_memory_bytes $mem"
echo '# TYPE memory_limit_bytes gauge'
echo "memory_limit_bytes $limit"
"""


def install_metrics(lab: Lab, started: Started) -> str:
    """Add the metrics CGI to a running Lab container; the address Prometheus scrapes."""
    script = METRICS_CGI.replace("'", "'\"'\"'")
    lab.exec(
        started,
        "sh",
        "-c",
        f"printf '%s' '{script}' > /www/cgi-bin/metrics && chmod 755 /www/cgi-bin/metrics",
    )
    return f"127.0.0.1:{started.port}"


def example_service(lab: Lab, prefix: str = "shop") -> tuple[Started, str]:
    """A healthy example service with its metrics endpoint; (the container, its address)."""
    started = lab.healthy(prefix)
    return started, install_metrics(lab, started)
