"""LiteLLM's proxy for bench-peers: its config.yaml, its process (from a virtualenv of its own), and one client request.

The config is the provider page's (docs.litellm.ai/docs/providers/black_forest_labs) in the proxy's shape
(docs.litellm.ai/docs/proxy/configs): one ``model_list`` entry whose ``litellm_params`` name the
``black_forest_labs/`` model, the key from the environment and ``api_base`` at the simulator, and a
``master_key``. No database, so no virtual keys (they need Postgres): the two apps are two clients of the master
key. No Redis: LiteLLM's docs ask for it to share rpm/tpm limits, cooldowns and caches between proxy instances,
and this config sets none of them (BFL's own 24 slots are its only limit); the router's settings are its defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from devtools.processes import ROOT, free_port, start_process, stop_process, wait_until

VENV = ROOT / ".venv-peers"
# Pinned in the Makefile's bench-peers install too. 1.108.6 is the newest whose `proxy` extra installs from PyPI
# here: 1.110.2's needs litellm-proxy==1.110.2 and 1.109.x's litellm-proxy-extras==0.4.113, neither published.
VERSION = "1.108.6"
MODEL = "flux-dev"
# The name LiteLLM polls: it accepts https on bfl.ai only (bench/peers_tls.py).
BFL_HOST = "simulator.bfl.ai"
MASTER_KEY = "sk-bench-peers-master"
WORKERS = 2


def config(api_base: str, model: str = MODEL) -> dict:
    """The proxy's config.yaml, as a mapping."""
    return {
        "model_list": [{
            "model_name": model,
            "litellm_params": {"model": f"black_forest_labs/{model}", "api_key": "os.environ/BFL_API_KEY",
                               "api_base": api_base},
        }],
        "general_settings": {"master_key": MASTER_KEY},
    }


def write_config(path: Path, api_base: str) -> Path:
    path.write_text(yaml.safe_dump(config(api_base), sort_keys=False))
    return path


def proxy_env(bfl_key: str, api_base: str, tls_front: str, cert: Path) -> dict[str, str]:
    """LiteLLM's environment: BFL's key and base, and BFL's https reached through the TLS front (only https goes
    there).

    BFL_API_BASE as well as the config's ``api_base``: 1.108.6's image generation drops the deployment's
    ``api_base`` and ``api_key`` on the way to its BFL handler (``images/main.py`` builds the handler's params from
    the remaining kwargs), which then reads these two variables, else https://api.bfl.ai. Without it every
    submission went to api.bfl.ai (the TLS front refused them)."""
    return {"PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "BFL_API_KEY": bfl_key, "BFL_API_BASE": api_base, "HTTPS_PROXY": tls_front, "NO_PROXY": "127.0.0.1,localhost",
            "SSL_CERT_FILE": str(cert),
            # The model cost map from the package, not fetched from GitHub at start (this machine reaches PyPI only).
            "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "PYTHONUNBUFFERED": "1"}


@dataclass
class LiteLLMProxy:
    """``litellm --config`` with WORKERS processes on a port of loopback."""

    process: object
    base_url: str

    @classmethod
    def start(cls, directory: Path, api_base: str, env: dict[str, str]) -> "LiteLLMProxy":
        port = free_port()
        cfg = write_config(directory / "litellm-config.yaml", api_base)
        process = start_process([str(VENV / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1",
                                 "--port", str(port), "--num_workers", str(WORKERS)], env,
                                log_path=str(directory / "litellm.log"))
        proxy = cls(process, f"http://127.0.0.1:{port}")

        def ready() -> bool:
            if process.poll() is not None:  # type: ignore[attr-defined]
                raise RuntimeError(f"LiteLLM's proxy exited; see {directory / 'litellm.log'}")
            try:
                return requests.get(proxy.base_url + "/health/liveliness", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout=300, interval=0.5, message="LiteLLM's proxy to answer")
        return proxy

    def stop(self) -> None:
        stop_process(self.process)  # type: ignore[arg-type]


def generate(session: requests.Session, base_url: str, prompt: str, timeout: float) -> tuple[str | None, str | None]:
    """POST /v1/images/generations as an OpenAI client does: (the image URL, None) or (None, what went wrong)."""
    try:
        response = session.post(f"{base_url}/v1/images/generations", timeout=timeout,
                                headers={"Authorization": f"Bearer {MASTER_KEY}"},
                                json={"model": MODEL, "prompt": prompt, "n": 1})
    except requests.Timeout:
        return None, "client gone"
    except requests.RequestException as exc:
        return None, type(exc).__name__
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    data = response.json().get("data") or [{}]
    return data[0].get("url"), None
