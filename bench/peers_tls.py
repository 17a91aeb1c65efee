"""BFL's https for LiteLLM: a CONNECT proxy that ends TLS for one made-up ``*.bfl.ai`` name and passes the bytes on
to the simulator's plain http.

    python -m bench.peers_tls --port 0 --host-name simulator.bfl.ai --upstream 127.0.0.1:PORT --cert C --key K

LiteLLM's BFL provider refuses a ``polling_url`` that is not ``https`` on a ``bfl.ai`` host (its
``assert_bfl_polling_url``), and the simulator speaks plain http on loopback. LiteLLM's process is given
``HTTPS_PROXY`` pointing here and ``SSL_CERT_FILE`` naming the certificate made for the name, so it polls as it polls
BFL, certificate checked, with nothing of it changed. Nothing but that name is passed on: a CONNECT to any other host
is refused, so the process reaches nothing outside loopback through it.
"""

from __future__ import annotations

import argparse
import select
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

HEAD_LIMIT = 16_384
CHUNK = 65_536


def make_certificate(directory: Path, host_name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host_name`` (its own CA, so it can be the client's whole trust store)."""
    cert, key = directory / "bfl-tls.pem", directory / "bfl-tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host_name}",
                    "-addext", f"subjectAltName=DNS:{host_name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def connect_target(head: bytes) -> str | None:
    """The ``host`` of a ``CONNECT host:port HTTP/1.1`` request head, else None."""
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or parts[0] != "CONNECT":
        return None
    return parts[1].rsplit(":", 1)[0]


def _read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _pump(tls: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Both directions on one thread: an SSL socket must not be read and written from two at once."""
    while True:
        # Bytes OpenSSL has decrypted already never show in select().
        ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 120)[0]
        if not ready:
            return
        for side in ready:
            data = side.recv(CHUNK)
            if not data:
                return
            (upstream if side is tls else tls).sendall(data)


def _handle(conn: socket.socket, context: ssl.SSLContext, host_name: str, upstream: tuple[str, int]) -> None:
    try:
        if connect_target(_read_head(conn)) != host_name:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with context.wrap_socket(conn, server_side=True) as tls, socket.create_connection(upstream) as up:
            _pump(tls, up)
    except (OSError, ssl.SSLError):
        pass  # a client or the simulator gone: its tunnel ends
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_tls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host-name", required=True)
    parser.add_argument("--upstream", required=True, help="host:port of the simulator's plain http")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    host, port = args.upstream.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = socket.create_server(("127.0.0.1", args.port), backlog=256)
    print(f"tls front listening on http://127.0.0.1:{server.getsockname()[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_handle, args=(conn, context, args.host_name, (host, int(port))), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
