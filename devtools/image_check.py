"""``make image-check``: the container image built from deploy/Dockerfile and run the way users run it.

Not part of ``make test``: it needs root on a Debian 12 machine and takes a few minutes. In order:

1. The host: podman, runc, catatonit, debootstrap, podman-compose and the CNI dnsname plugin from
   Debian (apt-get, only what is missing), and a containers.conf drop-in: runc instead of crun and no
   default ulimits, because this sandbox lacks CAP_SYS_RESOURCE and mixes cgroup versions.
2. Stand-in base images: no registry serves ``python:3.11-slim`` here, so Debian's python3 is
   debootstrapped and imported once (``--from`` replaces the Dockerfile's FROM for this build only),
   and ``redis:7`` is stood in for by Debian's redis-server on that base.
3. The build of deploy/Dockerfile, unchanged, with deploy/Dockerfile.dockerignore; pip inside the
   build is only lent this machine's CA bundle (its PyPI goes through a TLS-inspecting proxy).
4. The image itself: size, user, environment, no compilers or caches, only the runtime in /app.
5. web and worker containers with a real Redis container and the BFL simulator: a job submitted
   through the API is stored and served; /healthz and /readyz from outside and inside; non-root
   user writing its volume, on a read-only root filesystem; PORT honoured.
6. The worker container stopped as a platform does (SIGTERM, SIGKILL 30 s later) while downloads
   are in flight, started again, and every job stored.
7. deploy/docker-compose.yml brought up with podman-compose and used the same way.

Everything it starts is removed at the end, whatever happened. Exit status 0 only if every check held.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from .processes import ROOT, free_port, stop_process, wait_until
from .stack import SIMULATOR_KEY, procfile_commands, start_simulator

IMAGE = "localhost/fluxhook:image-check"
# docker-compose.yml's `image:` for web and worker; tagged so that compose finds the image just built.
COMPOSE_IMAGE = "localhost/fluxhook:local"
BASE_IMAGE = "localhost/fluxhook-check/python:3.11-bookworm"
REDIS_IMAGE = "localhost/fluxhook-check/redis:7-bookworm"
LABEL = "fluxhook.image-check"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_PACKAGES = ("podman", "runc", "catatonit", "iptables", "debootstrap", "podman-compose",
                 "golang-github-containernetworking-plugin-dnsname")
CONTAINERS_CONF = Path("/etc/containers/containers.conf.d/50-fluxhook-image-check.conf")
CONTAINERS_CONF_TEXT = """\
# Written by `make image-check` (devtools/image_check.py): crun refuses to start containers in a
# sandbox without CAP_SYS_RESOURCE and with mixed cgroup versions; runc runs them, once podman
# no longer asks for raised ulimits.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
"""
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the image's /app may hold: the Dockerfile's COPY sources and nothing else.
APP_ENTRIES = ["Procfile", "fluxhook", "receiver", "requirements.txt", "worker"]
COMPILERS = ("cc", "gcc", "g++", "c++", "clang", "make", "ld", "as")
# The platform's grace (Heroku's fixed 30 s; every deploy file sets it).
GRACE = 30
# Downloads slower than the worker's 10 s hand-back, so that the stop really cuts them off.
SLOW_DELIVERY = 20.0
STOP_JOBS = 8
WORKER_PROCESSES = 4
MODEL = "flux-2-pro"


class CheckFailed(Exception):
    """A step that cannot go on (the checks after it would say nothing)."""


# Every secret this run makes, so that no output of a failing command prints one.
SECRETS: set[str] = set()


def new_secret(length: int = 32) -> str:
    value = secrets.token_urlsafe(length)
    SECRETS.add(value)
    return value


def scrub(text: str) -> str:
    for value in SECRETS:
        text = text.replace(value, "***")
    return text


# --------------------------------------------------------------------------------------------
# output: what it does, and what held
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def check(self, name: str, held: bool, detail: str = "") -> bool:
        """Record one check and print it at once."""
        self.checks.append((name, bool(held), detail))
        print(f"    {'ok  ' if held else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        return bool(held)

    def fact(self, name: str, value: str) -> None:
        """A figure for the summary (sizes, timings)."""
        self.facts.append((name, value))
        print(f"    ..    {name}: {value}", flush=True)

    def summary(self) -> int:
        failed = [c for c in self.checks if not c[1]]
        print("\n" + "=" * 78)
        print(f"image-check: {len(self.checks) - len(failed)} of {len(self.checks)} checks held "
              f"in {time.monotonic() - self.started:.0f} s")
        for name, value in self.facts:
            print(f"  {name}: {value}")
        for name, _, detail in failed:
            print(f"  FAILED: {name}" + (f" ({detail})" if detail else ""))
        print("=" * 78, flush=True)
        return 1 if failed or not self.checks else 0


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------

def run(args: list[str], timeout: float, *, check: bool = True, stdin=None, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion within ``timeout`` s; on failure raise CheckFailed with its last words."""
    try:
        done = subprocess.run(args, stdin=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{' '.join(args[:3])} did not finish within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise CheckFailed(scrub(f"{' '.join(args[:4])} exited {done.returncode}:\n{tail}"))
    return done


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return run(["podman", *args], timeout, check=check)


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def in_container(container: str, code: str, timeout: float = 30) -> str:
    """Run Python code inside a running container (as its own user); its stdout."""
    return podman("exec", container, "python", "-c", code, timeout=timeout).stdout.strip()


# --------------------------------------------------------------------------------------------
# 1. the host
# --------------------------------------------------------------------------------------------

def prepare_host() -> None:
    """Install what podman needs here, once; idempotent."""
    if not shutil.which("dpkg-query"):
        raise CheckFailed(f"needs {', '.join(HOST_PACKAGES)}: run on Debian 12 (apt-get), or install them")
    missing = [p for p in HOST_PACKAGES if not _installed(p)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise CheckFailed(f"needs {', '.join(missing)}: run as root on Debian 12 (apt-get), or install them")
        print(f"    installing from Debian: {' '.join(missing)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], 600, env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], 900, env=env)
    else:
        print(f"    already installed: {' '.join(HOST_PACKAGES)}", flush=True)
    if not CONTAINERS_CONF.exists() or CONTAINERS_CONF.read_text() != CONTAINERS_CONF_TEXT:
        if os.geteuid() != 0:
            raise CheckFailed(f"needs {CONTAINERS_CONF} (runc, no default ulimits): run as root")
        CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERS_CONF.write_text(CONTAINERS_CONF_TEXT)
        print(f"    wrote {CONTAINERS_CONF}: runtime = runc, default_ulimits = []", flush=True)
    runtime = podman("info", "--format", "{{.Host.OCIRuntime.Name}}").stdout.strip()
    if runtime != "runc":
        raise CheckFailed(f"podman uses {runtime!r}, not runc: another containers.conf overrides {CONTAINERS_CONF}")
    print(f"    {podman('--version').stdout.strip()}, runtime {runtime}", flush=True)


def _installed(package: str) -> bool:
    done = run(["dpkg-query", "-W", "-f=${Status}", package], 30, check=False)
    return done.returncode == 0 and done.stdout.strip().endswith(" installed")


# --------------------------------------------------------------------------------------------
# 2. stand-ins for the registry's base images
# --------------------------------------------------------------------------------------------

def prepare_bases(work: Path) -> None:
    """The python and redis stand-ins, made once and kept in podman's storage."""
    if image_exists(BASE_IMAGE):
        print(f"    {BASE_IMAGE}: kept from an earlier run", flush=True)
    else:
        _debootstrap_python(work / "rootfs")
    if image_exists(REDIS_IMAGE):
        print(f"    {REDIS_IMAGE}: kept from an earlier run", flush=True)
    else:
        _build_redis(work / "redis")


def _debootstrap_python(rootfs: Path) -> None:
    print(f"    debootstrap bookworm (minbase, python3, python3-venv, ca-certificates) from {DEBIAN_MIRROR}",
          flush=True)
    run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         "bookworm", str(rootfs), DEBIAN_MIRROR], 900)
    # Shaped like the official image: `python` and `pip` on PATH in /usr/local, pip installing there.
    run(["chroot", str(rootfs), "python3", "-m", "venv", "/usr/local"], 120)
    # As slim as the official slim image: no package lists, caches, manuals or translations.
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                    "usr/share/doc/*", "usr/share/man/*", "usr/share/locale/*", "root/.cache"):
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        run(["podman", "import", "--change", "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]', "-", BASE_IMAGE], 600, stdin=tar.stdout)
    finally:
        tar.stdout.close()
        tar.wait(timeout=60)
    shutil.rmtree(rootfs, ignore_errors=True)
    print(f"    imported {BASE_IMAGE}", flush=True)


REDIS_CONTAINERFILE = f"""\
FROM {BASE_IMAGE}
# Debian's redis-server 7.0 for the official redis:7. Like that image, without protected mode:
# other containers of the compose network must reach it (it is never published).
RUN apt-get -o Acquire::Check-Valid-Until=false update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \\
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \\
    && printf '#!/bin/sh\\nexec /usr/bin/redis-server "$@" --protected-mode no\\n' > /usr/local/bin/redis-server \\
    && chmod 755 /usr/local/bin/redis-server
WORKDIR /data
CMD ["redis-server"]
"""


def _build_redis(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "Containerfile").write_text(REDIS_CONTAINERFILE)
    print("    building the redis stand-in (Debian's redis-server on that base)", flush=True)
    podman("build", "--network", "host", "-t", REDIS_IMAGE, str(directory), timeout=600)


# --------------------------------------------------------------------------------------------
# 3. the build
# --------------------------------------------------------------------------------------------

def build_image(work: Path, report: Report) -> None:
    """deploy/Dockerfile as it is, from the repository root, with deploy/Dockerfile.dockerignore."""
    mounts = []
    if HOST_CA_BUNDLE.is_file():
        # Only the build's RUN steps see these two files; nothing of them is committed to a layer.
        pip_conf = work / "pip.conf"
        pip_conf.write_text("[global]\ncert = /run/fluxhook-check/ca.crt\n")
        mounts = ["-v", f"{HOST_CA_BUNDLE}:/run/fluxhook-check/ca.crt:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
    # A file the ignore file must keep out, inside a directory the image does copy.
    canary = ROOT / "fluxhook" / "__pycache__" / "image-check-canary.cpython-311.pyc"
    made_dir = not canary.parent.exists()
    canary.parent.mkdir(exist_ok=True)
    canary.write_bytes(b"not for the image")
    started = time.monotonic()
    try:
        # docker format: OCI images have no HEALTHCHECK, and Docker honours the Dockerfile's.
        podman("build", "--format", "docker", "--network", "host", "--from", BASE_IMAGE,
               "-f", "deploy/Dockerfile", "--ignorefile", "deploy/Dockerfile.dockerignore", *mounts,
               "--label", f"{LABEL}=1", "-t", IMAGE, str(ROOT), timeout=900)
    finally:
        canary.unlink(missing_ok=True)
        if made_dir:
            canary.parent.rmdir()
    report.fact("build time", f"{time.monotonic() - started:.0f} s")
    podman("tag", IMAGE, COMPOSE_IMAGE)


# --------------------------------------------------------------------------------------------
# 4. the image
# --------------------------------------------------------------------------------------------

PROBE = """
import glob, json, os, shutil
app_files = [p for p in glob.glob('/app/**', recursive=True)]
print(json.dumps({
    'compilers': [c for c in %r if shutil.which(c)],
    'caches': [p for p in ('/root/.cache', '/home/fluxhook/.cache', '/tmp/pip') if os.path.exists(p)],
    'app': sorted(os.listdir('/app')),
    'app_bytecode': [p for p in app_files if '__pycache__' in p or p.endswith('.pyc')],
    'app_secrets': [p for p in app_files if os.path.basename(p).startswith('.env') or p.endswith(('.pem', '.key'))],
    'archives': [p for d in ('/app', '/tmp', '/root', '/usr/local') for p in glob.glob(d + '/**/*.whl', recursive=True)],
    'apt_lists': len(glob.glob('/var/lib/apt/lists/*_Packages*')),
}))
""" % (COMPILERS,)


def inspect_image(report: Report) -> None:
    info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    size, base = info["Size"], json.loads(podman("image", "inspect", BASE_IMAGE).stdout)[0]["Size"]
    report.fact("image size", f"{size / 1e6:.0f} MB ({base / 1e6:.0f} MB stand-in base + "
                f"{(size - base) / 1e6:.0f} MB of the Dockerfile's own layers)")
    config = info["Config"]
    env = dict(item.split("=", 1) for item in config.get("Env", []))
    report.check("runs as a non-root user", config.get("User", "").split(":")[0] not in ("", "0", "root"),
                 f"USER {config.get('User')!r}")
    report.check("PYTHONUNBUFFERED=1 and PYTHONDONTWRITEBYTECODE=1",
                 env.get("PYTHONUNBUFFERED") == "1" and env.get("PYTHONDONTWRITEBYTECODE") == "1")
    report.check("default command is the Procfile's web line",
                 config.get("Cmd") == shlex.split(procfile_commands()["web"]), " ".join(config.get("Cmd") or []))
    health = (info.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test") or []
    report.check("HEALTHCHECK kept in the image, asking /healthz", "/healthz" in " ".join(health))
    probe = json.loads(podman("run", "--rm", "--network", "none", "--read-only", "--user", "0",
                              "--label", f"{LABEL}=1", IMAGE, "python", "-c", PROBE, timeout=60).stdout)
    report.check("no compiler or build tool", not probe["compilers"], ", ".join(probe["compilers"]) or "none found")
    report.check("no pip cache, wheel or package list left", not (probe["caches"] or probe["archives"]
                                                                   or probe["apt_lists"]),
                 f"caches {probe['caches']}, wheels {len(probe['archives'])}, apt lists {probe['apt_lists']}")
    report.check("/app holds only the runtime", probe["app"] == APP_ENTRIES, ", ".join(probe["app"]))
    report.check("no bytecode, .env or key files copied in (the ignore file's canary included)",
                 not (probe["app_bytecode"] or probe["app_secrets"]),
                 ", ".join(probe["app_bytecode"] + probe["app_secrets"])[:200] or "none")


# --------------------------------------------------------------------------------------------
# HTTP against the running service and the simulator
# --------------------------------------------------------------------------------------------

@dataclass
class Service:
    """fluxhook's API as a user's app sees it (``base`` is where this host reaches the web process)."""

    base: str
    token: str

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10, **kwargs)

    def submit(self, prompt: str) -> dict:
        response = requests.post(self.base + "/v1/jobs", json={"model": MODEL, "input": {"prompt": prompt}},
                                 headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        if response.status_code != 202:
            raise CheckFailed(f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def job(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}").json()

    def answers(self, path: str) -> bool:
        try:
            return requests.get(self.base + path, timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def wait_stored(self, job_ids: list[str], timeout: float) -> dict[str, dict]:
        """Every job's record once all are terminal (bounded by ``timeout``)."""
        terminal = ("stored", "failed", "moderated", "expired")
        jobs: dict[str, dict] = {}

        def all_done():
            for job_id in job_ids:
                if jobs.get(job_id, {}).get("status") not in terminal:
                    jobs[job_id] = self.job(job_id)
            return all(job["status"] in terminal for job in jobs.values()) and len(jobs) == len(job_ids)

        try:
            wait_until(all_done, timeout=timeout, interval=0.5, message="the jobs to end")
        except TimeoutError:
            pass
        return jobs

    def fetch_image(self, job: dict) -> tuple[int, str, str]:
        """The stored image through its signed image.url, without the bearer token: status, type, sha256."""
        url = urlsplit(job["image"]["url"])
        here = urlsplit(self.base)
        # PUBLIC_BASE_URL may name a host only the containers know (compose: http://web:8000).
        response = requests.get(urlunsplit((here.scheme, here.netloc, url.path, url.query, "")), timeout=10)
        return response.status_code, response.headers.get("Content-Type", ""), hashlib.sha256(response.content).hexdigest()


def simulator_settings(base: str, **changes) -> None:
    requests.post(base + "/_sim/settings", json=changes, timeout=5).raise_for_status()


def simulator_stats(base: str) -> dict:
    return requests.get(base + "/_sim/stats", timeout=5).json()


def check_served(report: Report, service: Service, jobs: dict[str, dict], label: str) -> None:
    stored = [job for job in jobs.values() if job.get("status") == "stored"]
    report.check(f"{label}: every job stored", len(stored) == len(jobs),
                 f"{len(stored)}/{len(jobs)} stored; " + ", ".join(sorted({j.get('status', '?') for j in jobs.values()})))
    served = [service.fetch_image(job) for job in stored]
    good = [s for s, job in zip(served, stored, strict=False)
            if s[0] == 200 and s[1].startswith("image/") and s[2] == job["image"]["sha256"]]
    report.check(f"{label}: images served through the signed image.url, bytes matching sha256",
                 stored and len(good) == len(stored), f"{len(good)}/{len(stored)}")


# --------------------------------------------------------------------------------------------
# 5 and 6. web and worker containers, as `docker run` in deploy/README.md starts them
# --------------------------------------------------------------------------------------------

@dataclass
class Containers:
    """The containers, volumes and networks of one run, removed by name at the end."""

    run_id: str
    names: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def name(self, part: str) -> str:
        return f"fluxhook-check-{self.run_id}-{part}"

    def start(self, part: str, *args: str, timeout: float = 60) -> str:
        name = self.name(part)
        self.names.append(name)
        podman("run", "-d", "--name", name, "--label", f"{LABEL}={self.run_id}", *args, timeout=timeout)
        return name

    def volume(self, part: str) -> str:
        name = self.name(part)
        podman("volume", "create", "--label", f"{LABEL}={self.run_id}", name)
        self.volumes.append(name)
        return name

    def remove(self) -> None:
        for name in reversed(self.names):
            podman("rm", "-f", "-t", "5", name, timeout=60, check=False)
        for name in self.volumes:
            podman("volume", "rm", "-f", name, timeout=60, check=False)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Settings for --env-file, private to root: secrets never go on a command line."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.writelines(f"{key}={value}\n" for key, value in values.items())


def run_containers(work: Path, report: Report, box: Containers) -> None:
    sim_port, redis_port, web_port = free_port(), free_port(), free_port()
    simulator = start_simulator(sim_port, str(work / "simulator.log"))
    sim = f"http://127.0.0.1:{sim_port}"
    try:
        _containers_scenario(work, report, box, sim, redis_port, web_port)
    finally:
        stop_process(simulator)


def _containers_scenario(work: Path, report: Report, box: Containers, sim: str, redis_port: int,
                         web_port: int) -> None:
    token = new_secret(24)
    # The Redis deploy/README.md asks for: AOF on, noeviction; on loopback only (host network).
    box.start("redis", "--network", "host", REDIS_IMAGE, "redis-server", "--port", str(redis_port),
              "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "everysec",
              "--maxmemory-policy", "noeviction")
    images = box.volume("images")
    env_file = work / "fluxhook.env"
    host = sim.removeprefix("http://")
    write_env_file(env_file, {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "SECRET_KEY": new_secret(),
        "API_TOKENS": token, "BFL_API_KEY": SIMULATOR_KEY, "BFL_API_BASE": sim,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}", "RESULT_HOST_ALLOWLIST": host,
        "API_HOST_ALLOWLIST": host, "PORT": str(web_port),
    })
    # As deploy/README.md's `docker run` lines (no --init: the process is PID 1), plus a read-only
    # root filesystem: podman gives /tmp a tmpfs, the volume is the only other place to write.
    common = ["--network", "host", "--read-only", "--env-file", str(env_file), "-v", f"{images}:/data/images"]
    web = box.start("web", *common, IMAGE)
    worker = box.start("worker", *common, "-e", f"WORKER_PROCESSES={WORKER_PROCESSES}", IMAGE, "python", "-m", "worker")
    service = Service(f"http://127.0.0.1:{web_port}", token)

    report.check(f"web answers /healthz from outside on PORT={web_port} (the image's default is 8000)",
                 _wait(lambda: service.answers("/healthz"), 60))
    report.check("/readyz from outside: Redis, worker heartbeat and storage", _wait(lambda: service.answers("/readyz"), 90))
    report.check("HEALTHCHECK (podman healthcheck run) passes in the web container",
                 podman("healthcheck", "run", web, check=False, timeout=30).returncode == 0)
    inside = in_container(web, "import os, urllib.request as u; print(u.urlopen('http://127.0.0.1:%s/readyz' "
                               "% os.environ['PORT'], timeout=5).status)")
    report.check("/readyz from inside the web container", inside == "200", inside)
    for name, container in (("web", web), ("worker", worker)):
        ids = in_container(container, "import os; print(os.getuid(), os.getgid())")
        report.check(f"{name} runs as uid/gid 10001, on a read-only root filesystem",
                     ids == "10001 10001" and _inspect(container, "{{.HostConfig.ReadonlyRootfs}}") == "true", ids)

    first = service.submit("a lighthouse at dawn, watercolor")
    jobs = service.wait_stored([first["id"]], timeout=60)
    check_served(report, service, jobs, "one job through the API")
    job = jobs[first["id"]]
    report.check("the result came by webhook (the simulator reached the web container)",
                 job.get("source") == "webhook", f"source {job.get('source')!r}")
    listing = json.loads(in_container(worker, "import json, os; print(json.dumps([(n, os.stat('/data/images/' + n).st_uid) "
                                              "for n in os.listdir('/data/images')]))"))
    mine = [uid for name, uid in listing if name.startswith(first["id"])]
    report.check("the worker's user wrote the image into its volume", mine and set(mine) == {10001},
                 f"{len(listing)} file(s) in {images}, owners {sorted({uid for _, uid in listing})}")

    graceful_stop(report, service, sim, worker)


def _wait(condition, timeout: float) -> bool:
    try:
        wait_until(condition, timeout=timeout, interval=0.5)
        return True
    except TimeoutError:
        return False


def _inspect(container: str, template: str) -> str:
    return podman("inspect", "--format", template, container).stdout.strip()


def graceful_stop(report: Report, service: Service, sim: str, worker: str) -> None:
    """SIGTERM in the middle of downloads, SIGKILL 30 s later at most: nothing may be lost."""
    step(f"6/7 graceful stop: `podman stop --time {GRACE}` on the worker container while downloads are in flight")
    before = simulator_stats(sim)["delivery_requests"]
    simulator_settings(sim, delivery_delay=SLOW_DELIVERY)
    jobs = [service.submit(f"graceful stop {n}")["id"] for n in range(STOP_JOBS)]
    in_flight = 0

    def downloading():
        nonlocal in_flight
        in_flight = simulator_stats(sim)["delivery_requests"] - before
        return in_flight >= WORKER_PROCESSES

    _wait(downloading, 30)
    report.fact("graceful stop", f"{STOP_JOBS} jobs submitted, {in_flight} downloads in flight "
                f"(each takes {SLOW_DELIVERY:.0f} s, the worker hands a task back 10 s after SIGTERM)")
    started = time.monotonic()
    podman("stop", "--time", str(GRACE), worker, timeout=GRACE + 30)
    took = time.monotonic() - started
    code = _inspect(worker, "{{.State.ExitCode}}")
    log = podman("logs", worker, timeout=30).stdout + podman("logs", worker, timeout=30).stderr
    # worker.inprocess writes this line for each task it puts back in its queue once the grace ends: a download
    # stopped at its next piece ("stuck": false) or, waiting on the delivery host's answer, given back by its lane.
    handed_back = log.count("task in hand handed back to the queue: the worker is stopping")
    report.fact("worker stop", f"exited {code} after {took:.1f} s; {handed_back} task(s) announced for hand-back")
    report.check(f"worker stopped by SIGTERM within the {GRACE} s grace, not SIGKILLed",
                 took < GRACE and code != "137", f"{took:.1f} s, exit code {code}")
    report.check("every download in flight was handed back warmly", in_flight >= WORKER_PROCESSES
                 and handed_back >= in_flight and "cold shut down" not in log and "did not stop in time" not in log,
                 f"{in_flight} in flight, {handed_back} hand-back warnings")
    lost = [j for j in jobs if service.job(j)["status"] in ("failed", "expired")]
    report.check("no job failed while the worker was down", not lost, f"{len(lost)} failed")

    simulator_settings(sim, delivery_delay=0)
    started = time.monotonic()
    podman("start", worker, timeout=60)
    done = service.wait_stored(jobs, timeout=150)
    report.fact("after the restart", f"all {STOP_JOBS} jobs ended in {time.monotonic() - started:.1f} s")
    check_served(report, service, done, "after the stop and restart")
    retried = sum(job.get("attempts", {}).get("downloads", 0) >= 2 for job in done.values())
    report.check("the interrupted downloads were retried, each job downloaded to the end once", retried >= in_flight,
                 f"{retried} job(s) with a second download attempt")


# --------------------------------------------------------------------------------------------
# 7. docker-compose.yml with podman-compose
# --------------------------------------------------------------------------------------------

def compose_override(sim_port: int) -> str:
    """What this machine changes: the redis stand-in, and the BFL simulator as a service of its own."""
    return f"""\
services:
  redis:
    image: {REDIS_IMAGE}
  simulator:
    image: {COMPOSE_IMAGE}
    command: ["python", "-m", "simulator", "--host", "0.0.0.0", "--port", "8900", "--api-key", "{SIMULATOR_KEY}",
              "--public-url", "http://simulator:8900"]
    volumes:
      - {ROOT / 'simulator'}:/app/simulator:ro
    ports:
      - "127.0.0.1:{sim_port}:8900"
"""


def run_compose(work: Path, report: Report, run_id: str) -> None:
    project = f"fluxhook-check-{run_id}"
    directory = work / "compose"
    directory.mkdir()
    # The compose file unchanged; beside it the .env a user writes (podman-compose reads .env from
    # the compose file's directory, and deploy/.env may hold someone's real settings).
    shutil.copy(ROOT / "deploy" / "docker-compose.yml", directory / "docker-compose.yml")
    web_port, sim_port, token = free_port(), free_port(), new_secret(24)
    write_env_file(directory / ".env", {
        "SECRET_KEY": new_secret(), "API_TOKENS": token, "BFL_API_KEY": SIMULATOR_KEY,
        "BFL_API_BASE": "http://simulator:8900", "PUBLIC_BASE_URL": "http://web:8000",
        "RESULT_HOST_ALLOWLIST": "simulator:8900", "API_HOST_ALLOWLIST": "simulator:8900",
        "FLUXHOOK_PORT": str(web_port),
    })
    (directory / "override.yml").write_text(compose_override(sim_port))
    compose = ["podman-compose", "-p", project, "-f", "docker-compose.yml", "-f", "override.yml"]
    try:
        # Services named: podman-compose 1.0.3 knows no `profiles` and would start the tls profile's Caddy.
        run([*compose, "up", "-d", "--no-build", "web", "worker", "redis", "simulator"], 300, cwd=directory)
        _compose_checks(report, project, Service(f"http://127.0.0.1:{web_port}", token), f"http://127.0.0.1:{sim_port}")
        started = time.monotonic()
        run([*compose, "stop", "-t", str(GRACE), "worker", "web"], GRACE * 2 + 30, cwd=directory)
        took = time.monotonic() - started
        codes = {part: _inspect(f"{project}_{part}_1", "{{.State.ExitCode}}") for part in ("web", "worker")}
        report.check(f"`podman-compose stop -t {GRACE}`: web and worker stop by SIGTERM, not SIGKILL",
                     took < GRACE * 2 and "137" not in codes.values(), f"{took:.1f} s, exit codes {codes}")
    finally:
        run([*compose, "down", "-v", "-t", "5"], 180, cwd=directory, check=False)
        # podman-compose 1.0.3 leaves its network behind.
        podman("network", "rm", "-f", f"{project}_default", check=False)


def _compose_checks(report: Report, project: str, service: Service, sim: str) -> None:
    running = podman("ps", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}").stdout.split()
    report.check("compose: web, worker, redis (and the simulator) running",
                 len(running) == 4, ", ".join(sorted(running)))
    report.check("compose: /readyz from the published port", _wait(lambda: service.answers("/readyz"), 90))
    jobs = [service.submit(f"compose {n}")["id"] for n in range(3)]
    done = service.wait_stored(jobs, timeout=60)
    check_served(report, service, done, "compose")
    web, redis_name = f"{project}_web_1", f"{project}_redis_1"
    pid1 = in_container(web, "print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode())")
    report.check("compose: init: true puts an init process in front of gunicorn", "init" in pid1, pid1)
    owners = in_container(web, "import os; "
                               "print(sorted({os.stat('/data/images/' + n).st_uid for n in os.listdir('/data/images')}))")
    report.check("compose: the shared `images` volume written by uid 10001", owners == "[10001]", owners)
    settings = {}
    for name in ("appendonly", "appendfsync", "maxmemory-policy"):
        answer = podman("exec", redis_name, "redis-cli", "config", "get", name, timeout=30).stdout.split()
        settings[name] = answer[1] if len(answer) == 2 else "?"
    report.check("compose: Redis with AOF (appendonly yes, everysec) and noeviction",
                 settings.get("appendonly") == "yes" and settings.get("appendfsync") == "everysec"
                 and settings.get("maxmemory-policy") == "noeviction",
                 ", ".join(f"{name} {value}" for name, value in settings.items()))


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def main() -> int:
    report = Report()
    run_id = uuid.uuid4().hex[:8]
    box = Containers(run_id)
    work = Path(tempfile.mkdtemp(prefix="fluxhook-image-check-"))
    # A Ctrl-C or SIGTERM still runs the clean-up below.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        step("1/7 host: podman and what it needs here")
        prepare_host()
        step("2/7 base images standing in for the registry's python:3.11-slim and redis:7")
        prepare_bases(work)
        step("3/7 podman build -f deploy/Dockerfile (the Dockerfile unchanged)")
        build_image(work, report)
        step("4/7 the image: size, user, environment, what is in it")
        inspect_image(report)
        step("5/7 web and worker containers, a Redis container and the BFL simulator")
        run_containers(work, report, box)
        step("7/7 deploy/docker-compose.yml with podman-compose (bridge network, service names, volumes)")
        run_compose(work, report, run_id)
    except CheckFailed as exc:
        report.check("could go on", False, str(exc))
    except KeyboardInterrupt:
        report.check("ran to the end", False, "interrupted")
    finally:
        step("clean-up: removing this run's containers, volumes and files")
        box.remove()
        shutil.rmtree(work, ignore_errors=True)
    return report.summary()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
