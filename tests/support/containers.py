"""Real Docker containers in specific fault states, for tests of devops_agent.

Everything runs from one tiny local image (``devops-agent-test/busybox:1``)
built from the host's static busybox, so no registry/internet is needed.
The "app" inside is ``busybox httpd`` on 127.0.0.1:<port> (host network)
serving ``/cgi-bin/health`` plus a small supervisor shell script
(``/app/run``) that is PID 1 and traps SIGTERM so stop/restart are fast.

Faults that a restart should cure are triggered by flag files in ``/run``,
which is a tmpfs: ``docker restart`` keeps the writable layer but gives an
empty tmpfs, so the flag (and the fault) disappears.

Typical use::

    client = docker.from_env()
    ensure_test_image(client)
    lab = Lab(client)
    try:
        s = lab.crashed()
        ...
    finally:
        lab.cleanup()
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import Container

T = TypeVar("T")

IMAGE = "devops-agent-test/busybox:1"
IMAGE_REPOSITORY, IMAGE_TAG = IMAGE.rsplit(":", 1)
BUSYBOX_PATH = "/bin/busybox"

LABEL_TEST = "devops-agent.test"
LABEL_HEALTH_URL = "devops-agent.health-url"
LABEL_DEPENDS_ON = "devops-agent.depends-on"
LABEL_LAB = "devops-agent.lab"  # id of the Lab that created the container
LABEL_IMAGE_HASH = "devops-agent.test-image-hash"

HEALTH_PATH = "/cgi-bin/health"
DATABASE_URL = "postgres://app:app@127.0.0.1:5432/app"

# --- scripts baked into the image ------------------------------------------

# PID 1 of every container.  Environment:
#   PORT            port for httpd on 127.0.0.1 (required)
#   DATABASE_URL    required, otherwise "config error" + exit 78
#   APP_WORKLOAD    web (default) | batch (CPU burner) | queue (slow, warns)
#                   | journal (fills /data) | db (plain listener)
#   UPSTREAM_NAME / UPSTREAM_PORT   dependency checked every second
#   OOM_ALLOC       block size allocated once /run/oom exists (default 256M)
# Flags (tmpfs /run): /run/crash -> panic + exit 2, /run/oom -> allocate
# until OOM-killed, /run/hang -> health CGI sleeps (see below).
APP_SCRIPT = r"""#!/bin/sh
trap 'exit 0' TERM INT
log() { echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') $*"; }
nap() { sleep "$1" & wait $!; }
PORT="${PORT:-8080}"

if [ -z "$DATABASE_URL" ]; then
  log "info: loading configuration"
  log "config error: required setting DATABASE_URL is missing" >&2
  exit 78
fi

httpd -f -p "127.0.0.1:$PORT" -h /www &
log "info: listening on 127.0.0.1:$PORT"

case "$APP_WORKLOAD" in
  batch)
    ( trap 'exit 0' TERM; while :; do :; done ) &
    log "info: batch worker started" ;;
  journal)
    log "info: opening journal /data/journal"
    dd if=/dev/zero of=/data/journal bs=64k 2>/dev/null
    log "error: write /data/journal: No space left on device" ;;
esac

i=0
while :; do
  if [ -f /run/crash ]; then
    {
      echo "panic: runtime error: invalid memory address or nil pointer dereference"
      echo "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6f1c2a]"
      echo ""
      echo "goroutine 41 [running]:"
      echo "main.(*OrderHandler).ServeHTTP(0x0, {0x8a3f20, 0xc0001a2000}, 0xc0001b4000)"
      echo "	/src/app/handler.go:87 +0x2a"
    } >&2
    exit 2
  fi
  if [ -f /run/oom ]; then
    log "info: loading product catalog into memory"
    exec dd if=/dev/zero of=/dev/null bs="${OOM_ALLOC:-256M}" count=1
  fi
  if [ $((i % 5)) -eq 0 ]; then
    if [ -n "$UPSTREAM_PORT" ] && \
       ! nc -w 1 127.0.0.1 "$UPSTREAM_PORT" </dev/null >/dev/null 2>&1; then
      log "error: connection refused to $UPSTREAM_NAME:$UPSTREAM_PORT" >&2
    fi
  fi
  if [ $((i % 10)) -eq 0 ]; then
    case "$APP_WORKLOAD" in
      queue) log "warn: request queue depth 950 exceeds 500; p99 latency 2300ms" ;;
      journal)
        if ! (echo x >/data/.probe) 2>/dev/null; then
          log "error: write /data/journal: No space left on device" >&2
        fi
        rm -f /data/.probe ;;
    esac
  fi
  i=$((i + 1))
  nap 0.2
done
"""

# CGI; busybox httpd turns a "Status:" header into the HTTP status line
# (a full "HTTP/1.1 503 ..." first line works too).
HEALTH_SCRIPT = r"""#!/bin/sh
reply() {
  printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$1" "$2"
  exit 0
}
[ -f /run/hang ] && sleep 60
case "$APP_WORKLOAD" in
  queue) sleep 1.5 ;;
  journal)
    if ! (echo x >/data/.health) 2>/dev/null; then
      rm -f /data/.health
      reply "500 Internal Server Error" "error: write /data/journal: No space left on device"
    fi
    rm -f /data/.health ;;
esac
if [ -n "$UPSTREAM_PORT" ] && \
   ! nc -w 1 127.0.0.1 "$UPSTREAM_PORT" </dev/null >/dev/null 2>&1; then
  reply "503 Service Unavailable" "unhealthy: dependency $UPSTREAM_NAME:$UPSTREAM_PORT unreachable"
fi
reply "200 OK" "ok"
"""


# --- image --------------------------------------------------------------------


def _image_hash() -> str:
    h = hashlib.sha256()
    h.update(APP_SCRIPT.encode())
    h.update(HEALTH_SCRIPT.encode())
    h.update(str(os.path.getsize(BUSYBOX_PATH)).encode())
    return h.hexdigest()[:16]


def _write_rootfs(root: str) -> None:
    for d in ("bin", "tmp", "run", "data", "etc", "app", "www/cgi-bin", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX_PATH, os.path.join(root, "bin", "busybox"))
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    applets = subprocess.run(
        [BUSYBOX_PATH, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = os.path.join(root, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")
    for rel, text in (("app/run", APP_SCRIPT), ("www/cgi-bin/health", HEALTH_SCRIPT)):
        path = os.path.join(root, rel)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)


def ensure_test_image(client: docker.DockerClient) -> str:
    """Build ``devops-agent-test/busybox:1`` via ``docker import`` unless it exists.

    The image carries a content-hash label; it is rebuilt only when the
    baked scripts changed. Returns the image tag.
    """
    want = _image_hash()
    stale_id: str | None = None
    try:
        img = client.images.get(IMAGE)
        if (img.labels or {}).get(LABEL_IMAGE_HASH) == want:
            return IMAGE
        stale_id = img.id
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="devops-agent-rootfs-") as tmp:
        root = os.path.join(tmp, "rootfs")
        _write_rootfs(root)
        tar_path = os.path.join(tmp, "rootfs.tar")

        def _root_owned(ti: tarfile.TarInfo) -> tarfile.TarInfo:
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            return ti

        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(os.path.join(root, entry), arcname=entry, filter=_root_owned)
        client.api.import_image(
            src=tar_path,
            repository=IMAGE_REPOSITORY,
            tag=IMAGE_TAG,
            changes=[
                f"LABEL {LABEL_IMAGE_HASH}={want}",
                'CMD ["/app/run"]',
                "ENV PATH=/bin",
            ],
        )
    client.images.get(IMAGE)  # raises if the import did not work
    if stale_id:
        # drop the now-untagged old build unless a container still uses it
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(stale_id)
    return IMAGE


# --- helpers --------------------------------------------------------------------


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(url: str, timeout: float = 2.0) -> int | None:
    """HTTP GET ``url``; the status code, or None on timeout/refused/garbage."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        e.close()
        return e.code
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


def container_state(client: docker.DockerClient, name: str) -> dict[str, Any]:
    """Status, Running, Paused, OOMKilled, ExitCode and Health (None if no healthcheck)."""
    st = client.api.inspect_container(name)["State"]
    health = st.get("Health")
    return {
        "Status": st.get("Status"),
        "Running": st.get("Running"),
        "Paused": st.get("Paused"),
        "OOMKilled": st.get("OOMKilled"),
        "ExitCode": st.get("ExitCode"),
        "Health": health.get("Status") if health else None,
    }


def wait_for(
    pred: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``pred`` until it returns something true, and return that; TimeoutError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def container_stats(client: docker.DockerClient, name: str) -> dict[str, Any]:
    """One ``docker stats`` sample (``stream=False``; takes ~1 s on this engine)."""
    result: dict[str, Any] = client.api.stats(name, stream=False)
    return result


def cpu_fraction(stats: dict[str, Any]) -> float:
    """CPU use from a stats sample, in CPUs (0.2 == 20 % of one CPU)."""
    cpu, pre = stats["cpu_stats"], stats["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"].get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    if sys_delta <= 0:
        return 0.0
    return cpu_delta / sys_delta * (cpu.get("online_cpus") or 1)


def wait_status(client: docker.DockerClient, name: str, status: str, timeout: float = 10.0) -> None:
    """Wait until the container's State.Status equals ``status``."""
    wait_for(
        lambda: container_state(client, name)["Status"] == status,
        timeout,
        what=f"{name} to be {status}",
    )


def wait_probe(
    url: str, expected: int | None, timeout: float = 10.0, probe_timeout: float = 3.0
) -> None:
    """Wait until ``probe(url, probe_timeout)`` returns ``expected``."""
    wait_for(
        lambda: probe(url, timeout=probe_timeout) == expected, timeout, what=f"{url} -> {expected}"
    )


def logs(client: docker.DockerClient, name: str) -> str:
    """stdout+stderr of the container as text."""
    return client.containers.get(name).logs(stdout=True, stderr=True).decode(errors="replace")


def wait_log(client: docker.DockerClient, name: str, text: str, timeout: float = 10.0) -> None:
    """Wait until ``text`` appears in the container's logs."""
    wait_for(lambda: text in logs(client, name), timeout, what=f"{text!r} in logs of {name}")


# --- the lab --------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """A container started by :class:`Lab`."""

    name: str
    port: int
    health_url: str
    container_id: str


@dataclass(frozen=True)
class StartedWithDependency:
    """An app and the dependency it needs (``app`` is labelled depends-on)."""

    app: Started
    dependency: Started


def compose_labels(service: str, project: str = "lab", number: int = 1) -> dict[str, str]:
    """Labels that make a container look like a Compose service replica."""
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": str(number),
        "com.docker.compose.oneoff": "False",
    }


class Lab:
    """Starts test containers in fault states; ``cleanup()`` removes them all."""

    def __init__(self, client: docker.DockerClient, image: str | None = None) -> None:
        self.client = client
        self.image = image or ensure_test_image(client)
        self.lab_id = secrets.token_hex(4)
        self.created: list[str] = []  # container ids

    # -- generic ---------------------------------------------------------------

    def container(self, started: Started | str) -> Container:
        """The docker SDK Container for a Started (or name/id)."""
        return self.client.containers.get(
            started.container_id if isinstance(started, Started) else started
        )

    def start(
        self,
        name: str,
        *,
        env: dict[str, str | None] | None = None,
        labels: dict[str, str] | None = None,
        tmpfs: dict[str, str] | None = None,
        port: int | None = None,
        wait_healthy: bool = True,
        **run_kwargs: Any,
    ) -> Started:
        """Run the app image as ``name`` (host network) and optionally wait for 200."""
        port = port or free_port()
        health_url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
        merged: dict[str, str | None] = {"PORT": str(port), "DATABASE_URL": DATABASE_URL}
        merged.update(env or {})  # a None value removes the variable
        full_env = {k: v for k, v in merged.items() if v is not None}
        all_labels = {
            LABEL_TEST: "1",
            LABEL_LAB: self.lab_id,
            LABEL_HEALTH_URL: health_url,
        }
        all_labels.update(labels or {})
        mounts = {"/run": ""}
        mounts.update(tmpfs or {})
        c = self.client.containers.run(
            self.image,
            name=name,
            detach=True,
            network_mode="host",
            environment=full_env,
            labels=all_labels,
            tmpfs=mounts,
            stop_signal="SIGTERM",
            **run_kwargs,
        )
        cid = str(c.id)
        self.created.append(cid)
        started = Started(name=name, port=port, health_url=health_url, container_id=cid)
        if wait_healthy:
            wait_probe(health_url, 200, timeout=15)
        return started

    def exec(self, started: Started, *cmd: str) -> None:
        """Run a command inside the container (e.g. to set a fault flag)."""
        res = self.container(started).exec_run(list(cmd))
        if res.exit_code != 0:
            raise RuntimeError(f"exec {cmd} in {started.name} failed: {res.output!r}")

    def cleanup(self) -> None:
        """Force-remove every container this lab created (tracked or labelled)."""
        ids = set(self.created)
        for c in self.client.containers.list(
            all=True, filters={"label": [f"{LABEL_TEST}=1", f"{LABEL_LAB}={self.lab_id}"]}
        ):
            ids.add(str(c.id))
        for cid in ids:
            try:
                self.client.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:  # "removal already in progress"
                if "already in progress" not in str(e):
                    raise
        self.created.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @staticmethod
    def _name(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    # -- states ----------------------------------------------------------------

    def healthy(
        self,
        name_prefix: str = "web",
        compose_service: str | None = None,
        compose_project: str = "lab",
        cpus: float | None = None,
        mem_limit: str | None = None,
        extra_labels: dict[str, str] | None = None,
    ) -> Started:
        """A running app whose health endpoint answers 200."""
        labels = dict(compose_labels(compose_service, compose_project)) if compose_service else {}
        labels.update(extra_labels or {})
        kwargs: dict[str, Any] = {}
        if cpus is not None:
            kwargs["nano_cpus"] = int(cpus * 1e9)
        if mem_limit is not None:
            kwargs["mem_limit"] = mem_limit
            kwargs["memswap_limit"] = mem_limit
        return self.start(self._name(name_prefix), labels=labels, **kwargs)

    def crashed(self) -> Started:
        """App ran, then panicked and exited with code 2. Restart -> healthy."""
        s = self.start(self._name("api"))
        self.exec(s, "touch", "/run/crash")
        wait_status(self.client, s.name, "exited")
        return s

    def hung(self, docker_healthcheck: bool = False) -> Started:
        """Running, but the health endpoint never answers. Restart -> healthy.

        With `docker_healthcheck`, the container has a HEALTHCHECK on the same endpoint (every
        second), and this returns once Docker reports it unhealthy."""
        kwargs: dict[str, Any] = {}
        if docker_healthcheck:
            # To a file, not a pipe: the hung CGI's `sleep` would hold a pipe open.
            check = f"timeout 1 /www{HEALTH_PATH} >/tmp/hc 2>&1; grep -q 'Status: 200' /tmp/hc"
            second = 1_000_000_000
            kwargs["healthcheck"] = {
                "test": ["CMD-SHELL", check],
                "interval": second,
                "timeout": 2 * second,
                "retries": 1,
            }
        s = self.start(self._name("worker"), **kwargs)
        self.exec(s, "touch", "/run/hang")
        if docker_healthcheck:
            wait_for(
                lambda: container_state(self.client, s.name)["Health"] == "unhealthy",
                timeout=30,
                what=f"Docker to see {s.name} unhealthy",
            )
        return s

    def paused(self) -> Started:
        """Healthy app, then ``docker pause``. Unpause -> healthy."""
        s = self.start(self._name("web"))
        self.container(s).pause()
        return s

    def oom_killed(self, mem_limit: str = "16m") -> Started:
        """App under a small memory limit allocates too much and is OOM-killed
        (State.OOMKilled true, exit 137). Restart -> healthy."""
        s = self.start(self._name("cache"), mem_limit=mem_limit, memswap_limit=mem_limit)
        self.exec(s, "touch", "/run/oom")
        wait_status(self.client, s.name, "exited", timeout=15)
        return s

    def config_error(self) -> Started:
        """Exits with 78 at start: DATABASE_URL missing (also after restart)."""
        s = self.start(
            self._name("billing"),
            env={"DATABASE_URL": None},
            wait_healthy=False,
        )
        wait_status(self.client, s.name, "exited")
        return s

    def dependency_down(self) -> StartedWithDependency:
        """App whose db is stopped: health 503, logs name the db.
        Starting the db again -> app healthy without restart."""
        suffix = secrets.token_hex(3)
        db = self.start(f"db-{suffix}", env={"APP_WORKLOAD": "db"})
        app = self.start(
            f"app-{suffix}",
            env={"UPSTREAM_NAME": db.name, "UPSTREAM_PORT": str(db.port)},
            labels={LABEL_DEPENDS_ON: db.name},
        )
        self.container(db).stop(timeout=2)
        wait_status(self.client, db.name, "exited")
        wait_probe(app.health_url, 503)
        wait_log(self.client, app.name, f"connection refused to {db.name}:{db.port}")
        return StartedWithDependency(app=app, dependency=db)

    def cpu_saturated(
        self, compose_service: str | None = None, compose_project: str = "lab"
    ) -> Started:
        """App limited to 0.2 CPU with a busy loop: throttled, still answering."""
        labels = compose_labels(compose_service, compose_project) if compose_service else {}
        return self.start(
            self._name("batch"), env={"APP_WORKLOAD": "batch"}, labels=labels, nano_cpus=200_000_000
        )

    def overloaded(
        self, compose_service: str | None = None, compose_project: str = "lab"
    ) -> Started:
        """Health answers 200 but slowly (~1.5 s); logs warn about queue depth."""
        labels = compose_labels(compose_service, compose_project) if compose_service else {}
        s = self.start(self._name("frontend"), env={"APP_WORKLOAD": "queue"}, labels=labels)
        wait_log(self.client, s.name, "request queue depth")
        return s

    def disk_full(self) -> Started:
        """Fills a 1 MiB /data tmpfs; logs ENOSPC, health 500, keeps running."""
        s = self.start(
            self._name("ledger"),
            env={"APP_WORKLOAD": "journal"},
            tmpfs={"/data": "size=1m"},
            wait_healthy=False,
        )
        wait_probe(s.health_url, 500)
        wait_log(self.client, s.name, "write /data/journal: No space left on device")
        return s


def remove_all_test_containers(client: docker.DockerClient) -> int:
    """Force-remove every container labelled devops-agent.test=1 (any lab). Returns count."""
    n = 0
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_TEST}=1"}):
        try:
            c.remove(force=True, v=True)
            n += 1
        except docker.errors.NotFound:
            pass
    return n
