"""deploy/grafana-dashboard.json and deploy/prometheus-rules.yml against what Grafana and Prometheus load, and every
metric they name against a real /metrics after a job ran (so its series exist), not against a list kept by hand.

No Grafana or promtool here: the dashboard is checked for what an import needs (schemaVersion, panels placed on
the 24-column grid without overlap, every query on the datasource variable, so it imports into any Grafana), and
each PromQL expression is parsed by promql-parser (the Rust PromQL parser's bindings: unknown functions, wrong
argument types and bad regexes are refused), which also gives the metric names it selects.
"""

from __future__ import annotations

import json
import re

import promql_parser
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import METRICS_TOKEN, ready_payload
from credit_helpers import finish_job, submit_job
from devtools.processes import ROOT
from fluxhook.core import job as st
from fluxhook.credits import balance
from fluxhook.lifecycle import delivering
from fluxhook.lifecycle.storing import download_and_store
from fluxhook.store.deliveries import Attempt
from helpers import wait_sim_ready

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
RULES = DEPLOY / "prometheus-rules.yml"
OPERATING = ROOT / "docs" / "operating.md"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's own interval variables, as a query sees them once Grafana fills them in.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "6h"}
# Metrics the rules name that are not fluxhook's: Prometheus's own for the scrape job, the blackbox exporter's for
# the /readyz probe (deploy/prometheus.yml).
NOT_FLUXHOOKS = {"up", "probe_success"}
# What fluxhook exports with no series until something happens, and why none ran here.
NO_SERIES_UNTIL = {"fluxhook_bfl_account_cooling": "an account cools down"}
SEVERITIES = {"warning", "critical"}
RULE_KEYS = {"alert", "expr", "for", "labels", "annotations"}
PANEL_TYPES = {"timeseries", "stat", "row"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression selects (ValueError if it does not parse)."""
    names: set[str] = set()
    promql_parser.walk(promql_parser.parse(expr),
                       lambda node: names.add(node.name) if isinstance(node, promql_parser.VectorSelector) else None)
    return names


def grafana_filled(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable the dashboard does not define: {expr}"
    return expr


def dashboard_queries() -> list[str]:
    return [grafana_filled(t["expr"]) for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_the_parser_finds_the_names_and_refuses_what_prometheus_would():
    assert metric_names('sum by (le) (rate(a_bucket{x="y"}[5m])) / on() b and absent(c)') == {"a_bucket", "b", "c"}
    for wrong in ("rat(a[5m])", "rate(a)", "histogram_quantile(a)", 'a{x=~"("}', "sum(a"):
        with pytest.raises(ValueError):
            promql_parser.parse(wrong)


def test_the_dashboard_imports_into_any_grafana():
    board = dashboard()
    assert board["title"] and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36  # timeseries panels' era
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["name"] == "datasource" and variable["query"] == "prometheus"  # any Prometheus datasource
    ids, cells = set(), set()
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES and panel["title"], panel
        assert panel["id"] not in ids, f"panel id {panel['id']} twice"
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in "hwxy") and grid["h"] and grid["w"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE and panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            promql_parser.parse(grafana_filled(target["expr"]))
    assert "${DS_" not in DASHBOARD.read_text()  # no import-time input left unfilled by file provisioning


@pytest.mark.parametrize("panel", ["jobs by status", "slots busy", "waiting", "stored", "callbacks", "credits spent",
                                   "notifications", "downloads", "redis commands"])
def test_the_dashboard_shows(panel):
    assert any(panel in p["title"].lower() for p in dashboard()["panels"]), panel


def test_latency_is_shown_as_quantiles_of_the_histogram():
    (panel,) = [p for p in dashboard()["panels"] if "stored" in p["title"].lower()]
    quantiles = [t["expr"] for t in panel["targets"] if "fluxhook_completion_to_stored_seconds_bucket" in t["expr"]]
    assert [re.match(r"histogram_quantile\((0\.\d+),", q).group(1) for q in quantiles] == ["0.5", "0.95", "0.99"]
    assert all("sum by (le)" in q for q in quantiles)  # buckets added up across series before the quantile


def test_every_rule_is_one_prometheus_loads_and_says_what_to_do():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    names = [rule["alert"] for rule in rules()]
    assert len(set(names)) == len(names), names
    for rule in rules():
        assert set(rule) == RULE_KEYS, (rule["alert"], set(rule) ^ RULE_KEYS)
        assert re.fullmatch(r"Fluxhook[A-Za-z]+", rule["alert"])
        promql_parser.parse(rule["expr"])
        promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        summary = rule["annotations"]["summary"]
        # What to do: a verb an operator acts on, not only what is wrong.
        assert re.search(r"\b(top|add|check|raise|start|fix|find|revoke|run)\b", summary, re.I), summary


def alerts_section() -> str:
    text = OPERATING.read_text()
    return text.split("### Alerts worth setting", 1)[1].split("\n### ", 1)[0]


def test_the_rules_are_every_alert_operating_md_names_and_no_other():
    section = alerts_section()
    bullets = [b for b in re.split(r"\n- ", section)[1:]]
    assert len(bullets) >= 11
    named = set()
    for bullet in bullets:
        found = re.findall(r"`(Fluxhook[A-Za-z]+)`", bullet)
        assert found, f"an alert in operating.md without its rule: {bullet[:80]}"
        named |= set(found)
    assert named == {rule["alert"] for rule in rules()}
    assert "deploy/prometheus-rules.yml" in section and "deploy/grafana-dashboard.json" in section
    assert "```yaml" not in section  # the rules are the file, not a copy in the page


def test_prometheus_loads_the_rules_file():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert [(DEPLOY / path).resolve() for path in config["rule_files"]] == [RULES.resolve()]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    # The jobs the rules' own metrics come from.
    assert {"fluxhook", "fluxhook-readyz"} <= jobs
    assert {m.group(1) for r in rules() for m in re.finditer(r'job="([^"]+)"', r["expr"])} <= jobs


def test_the_deploy_readme_says_how_to_load_both():
    readme = (DEPLOY / "README.md").read_text()
    assert "[`grafana-dashboard.json`](grafana-dashboard.json)" in readme
    assert "[`prometheus-rules.yml`](prometheus-rules.yml)" in readme


# -- every metric named is one a real /metrics exports, after a job ran -----------------------------------------------

@pytest.fixture()
def scraped(local_app, make_services, sim):
    """/metrics of a web app in this process, after a job was called back (over HTTP), stored and notified, another
    learnt by a poll, and the account's balance read, by fluxhook's own paths on the same Redis database."""
    limit = {"BFL_DAILY_CREDIT_LIMIT": "1000000"}  # fluxhook_daily_credit_limit is there only when it is set
    api, _ = local_app(13, **limit)
    svc = make_services(13, **limit)
    job = submit_job(svc, "metrics for the dashboard")
    sample = wait_sim_ready(sim, job.bfl_id)["result"]["sample"]
    assert api.callback(job.id, ready_payload(job.bfl_id, sample)).status_code == 200
    assert download_and_store(svc, job.id, last_attempt=True) == st.STORED
    delivering.deliver(svc, Attempt(f"msg_{job.id}", ""))  # no target: counted as skipped
    assert finish_job(svc, sim, submit_job(svc, "its callback lost")).status == st.STORED
    balance.refresh(svc)
    response = requests.get(api.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                            timeout=10)
    assert response.status_code == 200
    return list(text_string_to_metric_families(response.text))


def test_every_metric_the_dashboard_and_rules_name_is_one_fluxhook_exports(scraped):
    with_series = {sample.name for family in scraped for sample in family.samples}
    # The names a query may select of each family: a counter's with _total, a histogram's with its suffixes.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    declared = {f.name + suffix for f in scraped for suffix in ("", *suffixes.get(f.type, ()))}
    named = set().union(*map(metric_names, dashboard_queries()), *(metric_names(r["expr"]) for r in rules()))
    ours = named - NOT_FLUXHOOKS
    assert all(name.startswith("fluxhook_") for name in ours), ours
    assert not ours - declared, f"named but not exported: {sorted(ours - declared)}"
    assert not ours - with_series - set(NO_SERIES_UNTIL), f"no series after a job: {sorted(ours - with_series)}"
    # What the issue asks the dashboard to show is all there.
    assert {"fluxhook_jobs", "fluxhook_bfl_slots_in_use", "fluxhook_jobs_waiting",
            "fluxhook_completion_to_stored_seconds_bucket", "fluxhook_credits_spent_total",
            "fluxhook_notifications_total", "fluxhook_redis_commands_processed_total"} <= named
