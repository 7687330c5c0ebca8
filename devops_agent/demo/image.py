"""The demo's image, made on this machine from the host's static busybox: no registry needed.

A root file system with busybox and its applets, a supervisor script as PID 1 (`/app/run`, which
serves `busybox httpd` on 127.0.0.1:$PORT with a CGI health endpoint) and nothing else, put in
with `docker import`. A content hash in a label says when the scripts changed and the image must
be made again.

The faults are flag files in `/run`, a tmpfs: `docker restart` empties it, so a restart cures
what a restart should cure (a crash, a hang, an OOM kill), as it would a real service.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker
import docker.errors

IMAGE = "devops-agent-demo/busybox:1"
LABEL_DEMO = "devops-agent.demo"  # on every container the demo starts (and on its image)
LABEL_IMAGE_HASH = "devops-agent.demo-image-hash"
BUSYBOX = Path("/bin/busybox")
HEALTH_PATH = "/cgi-bin/health"

# PID 1. PORT: where httpd listens; DEPENDS_NAME/DEPENDS_PORT: a service it needs (checked every
# second, and by the health endpoint). Flags in /run: crash (panic, exit 2), oom (allocate past
# the memory limit), hang (the health endpoint stops answering).
APP_SCRIPT = r"""#!/bin/sh
trap 'exit 0' TERM INT
log() { echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') $*"; }
nap() { sleep "$1" & wait $!; }
PORT="${PORT:-8080}"
httpd -f -p "127.0.0.1:$PORT" -h /www &
log "info: ${ROLE:-api} listening on 127.0.0.1:$PORT"
i=0
while :; do
  if [ -f /run/crash ]; then
    {
      echo "panic: runtime error: invalid memory address or nil pointer dereference"
      echo "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6f1c2a]"
      echo "goroutine 41 [running]:"
      echo "main.(*OrderHandler).ServeHTTP(0x0, {0x8a3f20, 0xc0001a2000}, 0xc0001b4000)"
    } >&2
    exit 2
  fi
  if [ -f /run/oom ]; then
    log "info: loading the product catalog into memory"
    exec dd if=/dev/zero of=/dev/null bs=256M count=1
  fi
  if [ -n "$DEPENDS_PORT" ] && [ $((i % 5)) -eq 0 ] && \
     ! nc -w 1 127.0.0.1 "$DEPENDS_PORT" </dev/null >/dev/null 2>&1; then
    log "error: connection refused to $DEPENDS_NAME:$DEPENDS_PORT" >&2
  fi
  i=$((i + 1))
  nap 0.2
done
"""

# The health endpoint (busybox httpd turns the "Status:" header into the status line).
HEALTH_SCRIPT = r"""#!/bin/sh
reply() {
  printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\n%s\n' "$1" "$2"
  exit 0
}
[ -f /run/hang ] && sleep 120
if [ -n "$DEPENDS_PORT" ] && \
   ! nc -w 1 127.0.0.1 "$DEPENDS_PORT" </dev/null >/dev/null 2>&1; then
  reply "503 Service Unavailable" "unhealthy: $DEPENDS_NAME:$DEPENDS_PORT unreachable"
fi
reply "200 OK" "ok"
"""


class DemoError(Exception):
    """The demo cannot go on; the message is one line for the person who ran it."""


def _content_hash() -> str:
    digest = hashlib.sha256()
    for part in (APP_SCRIPT, HEALTH_SCRIPT, str(BUSYBOX.stat().st_size)):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _write_rootfs(root: Path) -> None:
    for sub in ("bin", "tmp", "run", "etc", "app", "www/cgi-bin", "root"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if applet != "busybox" and not os.path.lexists(link):
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    for rel, text in (("app/run", APP_SCRIPT), ("www/cgi-bin/health", HEALTH_SCRIPT)):
        (root / rel).write_text(text)
        (root / rel).chmod(0o755)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def ensure_image(client: docker.DockerClient) -> bool:
    """Make the demo image unless an up-to-date one exists; whether it was made now."""
    if not BUSYBOX.exists():
        raise DemoError(f"{BUSYBOX} is missing: install busybox-static (scripts/setup.sh does)")
    want = _content_hash()
    stale: str | None = None
    try:
        image = client.images.get(IMAGE)
        if (image.labels or {}).get(LABEL_IMAGE_HASH) == want:
            return False
        stale = image.id
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="devops-agent-demo-") as tmp:
        root = Path(tmp) / "rootfs"
        _write_rootfs(root)
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(root / entry, arcname=entry, filter=_root_owned)
        repository, tag = IMAGE.rsplit(":", 1)
        client.api.import_image(
            src=str(archive),
            repository=repository,
            tag=tag,
            changes=[
                f"LABEL {LABEL_IMAGE_HASH}={want}",
                f"LABEL {LABEL_DEMO}=1",
                'CMD ["/app/run"]',
                "ENV PATH=/bin",
            ],
        )
    client.images.get(IMAGE)  # raises when the import did not work
    if stale:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(stale)
    return True


def remove_image(client: docker.DockerClient) -> bool:
    """Remove the demo image; whether there was one."""
    try:
        client.images.remove(IMAGE, force=True)
    except docker.errors.ImageNotFound:
        return False
    return True
