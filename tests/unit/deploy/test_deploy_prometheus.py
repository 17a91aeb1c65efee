"""deploy/prometheus.yml: the scrape job for /metrics sends a bearer token, from a file, since /metrics is not
public. Pure file checks, like tests/test_deploy.py."""

from __future__ import annotations

import yaml

from devtools.processes import ROOT

DEPLOY = ROOT / "deploy"
# The keys of a scrape_config this file may use, as Prometheus documents them: Prometheus refuses to start on a
# key it does not know, so a misspelt one is refused here first.
SCRAPE_KEYS = {"job_name", "metrics_path", "scheme", "scrape_interval", "scrape_timeout", "authorization",
               "static_configs", "tls_config"}


def test_the_scrape_job_sends_the_metrics_token_from_a_file():
    (job,) = [j for j in yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
              if j["job_name"] == "fluxhook"]

    assert set(job) <= SCRAPE_KEYS, set(job) - SCRAPE_KEYS
    assert job["metrics_path"] == "/metrics" and job["scheme"] == "https"
    assert job["authorization"] == {"type": "Bearer", "credentials_file": job["authorization"]["credentials_file"]}
    assert job["authorization"]["credentials_file"].startswith("/")
    assert "basic_auth" not in job and "bearer_token" not in job  # no token written into the file
    assert job["static_configs"][0]["targets"]


def test_the_deploy_readme_lists_it():
    assert "[`prometheus.yml`](prometheus.yml)" in (DEPLOY / "README.md").read_text()
