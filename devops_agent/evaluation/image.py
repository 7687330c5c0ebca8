"""The scenarios' container image, built locally from the host's static busybox (no registry).

The fault mechanics are those of the test suite's lab (tests/support/containers.py), copied here
so that the package never imports tests/, and extended for the evaluation's scenarios. PID 1 is
`/app/run`, a shell that traps SIGTERM and serves `busybox httpd` on 127.0.0.1:$PORT (host
network) with a health CGI at /cgi-bin/health.

Flags in /run (a tmpfs: a restart empties it, so a restart cures these faults): `crash` (panic,
exit 2), `oom` (allocate until OOM-killed), `hang` (the health CGI never answers), `degraded`
(the health CGI answers 503). Flags in /state (the writable layer: they survive a restart, so a
restart does not cure them): `crash-at-start` (panic a second after every start), `relapse`
(panic RELAPSE_AFTER seconds after every start).

Workloads (APP_WORKLOAD): `web` (default), `db`, `batch` (a CPU burner), `queue` (slow answers,
logs about its queue), `slow` (answers in HEALTH_DELAY seconds, logs about latency: slow but
healthy), `journal` (fills /data). `batch` and `queue` share their work with the replicas of
their service: a replica that finds $PORT taken serves on the next free port above it, and each
one counts the replicas listening on PORT..PORT+5; with two or more, the work is spread and the
queue drains (answers in 0.3 s) or the burner idles.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

import docker
import docker.errors

IMAGE = "devops-agent-eval/busybox:1"
IMAGE_REPOSITORY, IMAGE_TAG = IMAGE.rsplit(":", 1)
BUSYBOX_PATH = "/bin/busybox"
LABEL_IMAGE_HASH = "devops-agent.eval-image-hash"
HEALTH_PATH = "/cgi-bin/health"
DATABASE_URL = "postgres://app:app@127.0.0.1:5432/app"
REPLICA_PORTS = 6  # a service's replicas serve on PORT .. PORT+5

# Docker's HEALTHCHECK of every scenario container (unless it opts out). The marker file lets
# the event reader tell these execs from anyone else's.
HEALTHCHECK_MARKER = "/tmp/hc"  # noqa: S108 (a path inside the container)
HEALTHCHECK_CMD = f"timeout 2 /www{HEALTH_PATH} >{HEALTHCHECK_MARKER} 2>&1; grep -q 'Status: 200' {HEALTHCHECK_MARKER}"
SECOND_NS = 1_000_000_000
HEALTHCHECK = {
    "test": ["CMD-SHELL", HEALTHCHECK_CMD],
    "interval": 2 * SECOND_NS,
    "timeout": 3 * SECOND_NS,
    "retries": 1,
}

APP_SCRIPT = r"""#!/bin/sh
trap 'exit 0' TERM INT
log() { echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') $*"; }
nap() { sleep "$1" & wait $!; }
in_use() { nc -w 1 127.0.0.1 "$1" </dev/null >/dev/null 2>&1; }
panic() {
  {
    echo "panic: runtime error: invalid memory address or nil pointer dereference"
    echo "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6f1c2a]"
    echo ""
    echo "goroutine 41 [running]:"
    echo "main.(*OrderHandler).ServeHTTP(0x0, {0x8a3f20, 0xc0001a2000}, 0xc0001b4000)"
    echo "	/src/app/handler.go:87 +0x2a"
  } >&2
  exit 2
}
count_replicas() {
  n=0; k=0
  while [ $k -lt 6 ]; do in_use $((PORT + k)) && n=$((n + 1)); k=$((k + 1)); done
  echo "$n" >/run/replicas
}
PORT="${PORT:-8080}"

if [ -z "$DATABASE_URL" ]; then
  log "info: loading configuration"
  log "config error: required setting DATABASE_URL is missing" >&2
  exit 78
fi
if [ -f /state/crash-at-start ]; then
  log "info: warming caches"
  nap 1
  panic
fi

ME="$PORT"
if in_use "$PORT"; then
  k=1
  while [ $k -lt 6 ] && in_use $((PORT + k)); do k=$((k + 1)); done
  ME=$((PORT + k))
fi
httpd -f -p "127.0.0.1:$ME" -h /www &
log "info: listening on 127.0.0.1:$ME"

case "$APP_WORKLOAD" in
  batch)
    (
      trap 'exit 0' TERM
      while :; do
        if [ "$(cat /run/replicas 2>/dev/null || echo 1)" -ge 2 ]; then sleep 0.5; continue; fi
        j=0; while [ $j -lt 20000 ]; do j=$((j + 1)); done
      done
    ) &
    log "info: batch worker started" ;;
  journal)
    log "info: opening journal /data/journal"
    dd if=/dev/zero of=/data/journal bs=64k 2>/dev/null
    log "error: write /data/journal: No space left on device" ;;
esac

relapse_ticks=$(( ${RELAPSE_AFTER:-4} * 5 ))
i=0
while :; do
  [ -f /run/crash ] && panic
  if [ -f /state/relapse ] && [ $i -ge $relapse_ticks ]; then panic; fi
  if [ -f /run/oom ]; then
    log "info: loading product catalog into memory"
    exec dd if=/dev/zero of=/dev/null bs="${OOM_ALLOC:-256M}" count=1
  fi
  if [ $((i % 5)) -eq 0 ]; then
    case "$APP_WORKLOAD" in batch|queue) count_replicas ;; esac
    if [ -n "$UPSTREAM_PORT" ]; then
      if [ "$UPSTREAM_CHECK" = http ]; then
        line=$(printf 'GET /cgi-bin/health HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 "$UPSTREAM_PORT" 2>/dev/null | head -n 1 | tr -d '\r')
        case "$line" in
          *" 200 "*|*" 200") ;;
          *) log "error: upstream $UPSTREAM_NAME:$UPSTREAM_PORT answered ${line:-nothing}" >&2 ;;
        esac
      elif ! in_use "$UPSTREAM_PORT"; then
        log "error: connection refused to $UPSTREAM_NAME:$UPSTREAM_PORT" >&2
      fi
    fi
  fi
  if [ $((i % 10)) -eq 0 ]; then
    case "$APP_WORKLOAD" in
      queue)
        if [ "$(cat /run/replicas 2>/dev/null || echo 1)" -ge 2 ]; then
          log "info: request queue depth 40; p99 latency 310ms"
        else
          log "warn: request queue depth 950 exceeds 500; p99 latency 2300ms"
        fi ;;
      slow) log "warn: p99 latency ${HEALTH_DELAY:-0.8}s is above the 0.5s objective" ;;
      db) [ -f /run/degraded ] && log "error: replica lag 45s: serving in recovery mode" >&2 ;;
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

# CGI; busybox httpd turns a "Status:" header into the HTTP status line.
HEALTH_SCRIPT = r"""#!/bin/sh
reply() {
  printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$1" "$2"
  exit 0
}
[ -f /run/hang ] && sleep 60
[ -n "$HEALTH_DELAY" ] && sleep "$HEALTH_DELAY"
[ -f /run/degraded ] && reply "503 Service Unavailable" "degraded: recovery in progress"
case "$APP_WORKLOAD" in
  queue)
    if [ "$(cat /run/replicas 2>/dev/null || echo 1)" -ge 2 ]; then sleep 0.3; else sleep 1.5; fi ;;
  journal)
    if ! (echo x >/data/.health) 2>/dev/null; then
      rm -f /data/.health
      reply "500 Internal Server Error" "error: write /data/journal: No space left on device"
    fi
    rm -f /data/.health ;;
esac
if [ -n "$UPSTREAM_PORT" ]; then
  if [ "$UPSTREAM_CHECK" = http ]; then
    line=$(printf 'GET /cgi-bin/health HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 "$UPSTREAM_PORT" 2>/dev/null | head -n 1 | tr -d '\r')
    case "$line" in
      *" 200 "*|*" 200") ;;
      *) reply "503 Service Unavailable" "unhealthy: dependency $UPSTREAM_NAME answered ${line:-nothing}" ;;
    esac
  elif ! nc -w 1 127.0.0.1 "$UPSTREAM_PORT" </dev/null >/dev/null 2>&1; then
    reply "503 Service Unavailable" "unhealthy: dependency $UPSTREAM_NAME:$UPSTREAM_PORT unreachable"
  fi
fi
reply "200 OK" "ok"
"""


def _image_hash() -> str:
    digest = hashlib.sha256()
    digest.update(APP_SCRIPT.encode())
    digest.update(HEALTH_SCRIPT.encode())
    digest.update(str(os.path.getsize(BUSYBOX_PATH)).encode())
    return digest.hexdigest()[:16]


def _write_rootfs(root: str) -> None:
    for d in ("bin", "tmp", "run", "data", "state", "etc", "app", "www/cgi-bin", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)  # noqa: S103 (the image's /tmp)
    shutil.copy2(BUSYBOX_PATH, os.path.join(root, "bin", "busybox"))
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)  # noqa: S103 (in the image)
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
        os.chmod(path, 0o755)  # noqa: S103 (in the image)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def ensure_image(client: docker.DockerClient) -> str:
    """Build the image with `docker import` unless one with the same scripts exists."""
    if not os.path.exists(BUSYBOX_PATH):
        raise RuntimeError(f"{BUSYBOX_PATH} is missing: install busybox-static (scripts/setup.sh)")
    want = _image_hash()
    stale_id: str | None = None
    try:
        image = client.images.get(IMAGE)
        if (image.labels or {}).get(LABEL_IMAGE_HASH) == want:
            return IMAGE
        stale_id = image.id
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="devops-agent-eval-rootfs-") as tmp:
        root = os.path.join(tmp, "rootfs")
        _write_rootfs(root)
        tar_path = os.path.join(tmp, "rootfs.tar")
        with tarfile.open(tar_path, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(os.path.join(root, entry), arcname=entry, filter=_root_owned)
        client.api.import_image(
            src=tar_path,
            repository=IMAGE_REPOSITORY,
            tag=IMAGE_TAG,
            changes=[f"LABEL {LABEL_IMAGE_HASH}={want}", 'CMD ["/app/run"]', "ENV PATH=/bin"],
        )
    client.images.get(IMAGE)  # raises when the import did not work
    if stale_id:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(stale_id)
    return IMAGE
