"""A CDN on this machine: Debian's nginx (devtools/nginx.sh installs it) on 127.0.0.1 running deploy/nginx/fluxhook.conf,
the configuration docs/storefront.md describes, in front of a fluxhook web: a job's image and poster cached, keyed on
the whole URL and the format ``Accept`` chooses, ``Cache-Control`` obeyed as sent. Only the file's "deployment:"
lines are pointed at this machine (``deployed_config``). Each answer says what the cache did in ``X-Cache-Status``
(``MISS``, ``HIT``...), and the access log has one JSON line per request with the same word and whether the origin
was asked: the tests' and ``make bench-cdn``'s evidence."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from .processes import free_port, start_process, stop_process, wait_until

NGINX_PATHS = ("/usr/sbin/nginx", "/usr/bin/nginx")
# What Chromium sends for an <img>: a format=auto variant is AVIF for it.
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
DEPLOYED = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "fluxhook.conf"

# The process's own files, around the deployed file: nginx here runs as this user, its files in one folder.
_MAIN = """
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;
    log_format cdn escape=json '{{"time":"$msec","uri":"$request_uri","status":"$status","cache":"$upstream_cache_status",'
                               '"origin":"$upstream_addr","accept":"$http_accept","bytes":"$body_bytes_sent"}}';
    access_log {folder}/access.log cdn;
    include {deployed};
}}
"""


def deployed_config(origin: str, port: int, cache: Path) -> str:
    """deploy/nginx/fluxhook.conf with its "deployment:" lines set: the web at ``origin`` (``host:port``), nginx on
    127.0.0.1:``port``, its cache in ``cache``. Each line is there once, or this raises: the file is what is run."""
    text = DEPLOYED.read_text()
    for line, mine in (("/var/cache/nginx/fluxhook ", f"{cache} "), ("server 127.0.0.1:8000;", f"server {origin};"),
                       ("listen 80;", f"listen 127.0.0.1:{port};")):
        if text.count(line) != 1:
            raise RuntimeError(f"{DEPLOYED}: expected {line!r} once, to point it at this machine")
        text = text.replace(line, mine)
    return text


def nginx_binary() -> str | None:
    """Debian's nginx, where it is installed."""
    found = shutil.which("nginx")
    return found or next((path for path in NGINX_PATHS if os.access(path, os.X_OK)), None)


class CachingProxy:
    """nginx with ``proxy_cache`` in front of ``origin`` (``host:port``), its files (cache, logs) in ``folder``."""

    def __init__(self, origin: str, folder: Path):
        self.origin = origin
        self.folder = folder
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "CachingProxy":
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("no nginx: sh devtools/nginx.sh installs Debian's")
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers would run as nobody, who may not write this folder: they run as this user.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        deployed = self.folder / "fluxhook.conf"
        deployed.write_text(deployed_config(self.origin, self.port, self.folder / "cache"))
        config = self.folder / "nginx.conf"
        config.write_text(_MAIN.format(folder=self.folder, user=user, deployed=deployed))
        self.process = start_process([binary, "-p", str(self.folder), "-c", str(config), "-e",
                                     str(self.folder / "error.log")], dict(os.environ),
                                    log_path=str(self.folder / "nginx.out"))
        wait_until(self._listening, timeout=15, message=f"nginx on port {self.port} ({self.folder}/error.log)")
        return self

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            said = (self.folder / "error.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"nginx exited with code {self.process.returncode}: {said}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def __enter__(self) -> "CachingProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self) -> list[dict]:
        """The access log's lines so far: ``time`` (epoch seconds, to the millisecond), ``uri``, ``status``, ``cache``
        (nginx's word, '' where nothing is cached), ``origin`` (the origin's address when it was asked, else ''),
        ``accept``, ``bytes``."""
        path = self.folder / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
