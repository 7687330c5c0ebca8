"""A second Docker engine for tests: its own dockerd on its own unix socket and a tcp:// port
with TLS (certificates made here with openssl), data root, exec root and pid file."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.tls

from tests.support.containers import ensure_test_image, free_port, wait_for


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(where: Path) -> tuple[Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate; returns the server's
    directory (ca.pem, server-cert.pem, server-key.pem) and the client's (ca, cert, key.pem)."""
    server, client = where / "server", where / "client"
    server.mkdir(parents=True)
    client.mkdir(parents=True)
    days = ("-days", "2")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        *days,
        "-subj",
        "/CN=devops-agent-test-ca",
        cwd=where,
    )
    (where / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (where / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, out, ext in (("server", server, "server.ext"), ("client", client, "client.ext")):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=where,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            f"{name}-cert.pem",
            *days,
            "-extfile",
            ext,
            cwd=where,
        )
        shutil.copy(where / "ca.pem", out / "ca.pem")
        if name == "server":
            shutil.copy(where / "server-cert.pem", out / "server-cert.pem")
            shutil.copy(where / "server-key.pem", out / "server-key.pem")
        else:
            shutil.copy(where / "client-cert.pem", out / "cert.pem")
            shutil.copy(where / "client-key.pem", out / "key.pem")
    return server, client


@dataclass
class Engine:
    unix_url: str
    tcp_url: str
    client_certs: Path  # ca.pem, cert.pem, key.pem for the tcp:// port
    client: docker.DockerClient

    def tls_client(self) -> docker.DockerClient:
        certs = self.client_certs
        tls = docker.tls.TLSConfig(
            client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
            ca_cert=str(certs / "ca.pem"),
            verify=True,
        )
        from devops_agent.tools.docker import DockerBackend

        return DockerBackend(docker_host=self.tcp_url, tls=tls).client()


@contextlib.contextmanager
def second_engine() -> Iterator[Engine]:
    """Start the second dockerd, import the test image into it, and stop it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="dad-", dir="/tmp"))  # short: socket paths are limited
    server, client_certs = make_certs(root / "certs")
    socket_path = root / "d.sock"
    port = free_port()
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            f"--host=unix://{socket_path}",
            f"--host=tcp://127.0.0.1:{port}",
            "--tlsverify",
            f"--tlscacert={server / 'ca.pem'}",
            f"--tlscert={server / 'server-cert.pem'}",
            f"--tlskey={server / 'server-key.pem'}",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'x'}",
            f"--pidfile={root / 'd.pid'}",
            "--containerd-namespace=devops-agent-test",
            "--containerd-plugins-namespace=devops-agent-test-plugins",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver=vfs",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    unix_url = f"unix://{socket_path}"

    def answers() -> docker.DockerClient | None:
        if proc.poll() is not None:
            raise RuntimeError((root / "dockerd.log").read_text()[-2000:])
        try:
            found = docker.DockerClient(base_url=unix_url, timeout=60)
            found.ping()
        except Exception:
            return None
        return found

    client: docker.DockerClient | None = None
    try:
        client = wait_for(answers, timeout=90, interval=0.3, what="the second dockerd")
        ensure_test_image(client)
        yield Engine(unix_url, f"tcp://127.0.0.1:{port}", client_certs, client)
    finally:
        if client is not None:
            for container in client.containers.list(all=True):
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
            client.close()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        for mount in sorted(_mounts_under(root), reverse=True):  # dockerd's own, if left
            subprocess.run(["umount", mount], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p.startswith(str(root) + "/")]
