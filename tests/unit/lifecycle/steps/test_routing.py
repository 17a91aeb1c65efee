"""Routing a new job to BFL accounts (fluxhook/lifecycle/steps/routing.py): the route a job records, as its app key's
accounts or region and the account it names narrow every configured account, the refusals of an account it may
not use or that does not exist, and the account a tracked task is polled through. Which account then sends a job
is the slots' business (tests/unit/store/); over HTTP: tests/e2e/accounts/test_routing_and_failover.py."""

from __future__ import annotations

import pytest

from fluxhook.core.errors import Forbidden, InvalidRequest
from fluxhook.lifecycle.steps.callers import ADMIN, Caller
from fluxhook.lifecycle.steps.routing import route_of, tracking_account
from fluxhook.store.app_keys import AppKey

DB = 15  # no other unit test uses it; make_services flushes it before and after
PRO, FINETUNED = "flux-2-pro", "flux-pro-1.1-ultra-finetuned"
# eu and us in their regions, spare in none; us and spare at one endpoint (a finetune there has one home).
ACCOUNTS = {"BFL_ACCOUNTS": "eu,us,spare",
            "BFL_EU_API_KEY": "eu-secret-key", "BFL_EU_API_BASE": "https://api.eu.example", "BFL_EU_REGION": "eu",
            "BFL_US_API_KEY": "us-secret-key", "BFL_US_API_BASE": "https://api.us.example", "BFL_US_REGION": "us",
            "BFL_SPARE_API_KEY": "spare-secret-key", "BFL_SPARE_API_BASE": "https://api.us.example",
            "API_HOST_ALLOWLIST": "api.eu.example,api.us.example"}


@pytest.fixture()
def svc(make_services):
    return make_services(DB, **ACCOUNTS)


def _key(**limits) -> Caller:
    return Caller(AppKey(id="key_0123456789abcdef", name="shop", prefix="fhk_0123", secret_sha256="0" * 64, **limits))


def test_a_job_that_names_nothing_may_use_every_account_its_key_allows(svc):
    assert route_of(svc, ADMIN, PRO, None) is None
    assert route_of(svc, _key(), PRO, None) is None
    assert route_of(svc, _key(accounts=("us", "spare")), PRO, None) == "a:spare,us"
    assert route_of(svc, _key(region="eu"), PRO, None) == "r:eu"


def test_a_job_naming_an_account_goes_only_through_it(svc):
    assert route_of(svc, ADMIN, PRO, "spare") == "a:spare"
    assert route_of(svc, _key(accounts=("us", "spare")), PRO, "us") == "a:us"
    assert route_of(svc, _key(region="us"), PRO, "us") == "a:us"


def test_an_account_the_key_may_not_use_is_forbidden_and_one_that_does_not_exist_is_invalid(svc):
    with pytest.raises(Forbidden) as refused:
        route_of(svc, _key(accounts=("us",)), PRO, "eu")
    assert refused.value.code == "account_not_allowed" and refused.value.status == 403
    with pytest.raises(Forbidden):
        route_of(svc, _key(region="eu"), PRO, "spare")
    with pytest.raises(InvalidRequest, match="no account 'elsewhere'"):
        route_of(svc, ADMIN, PRO, "elsewhere")
    # A key whose accounts were all removed since: its jobs could never be sent.
    with pytest.raises(InvalidRequest, match="match no account"):
        route_of(svc, _key(accounts=("gone",)), PRO, None)


def test_a_finetune_must_name_its_account_unless_its_key_allows_one_endpoint(svc):
    with pytest.raises(InvalidRequest, match="name its 'account'"):
        route_of(svc, ADMIN, FINETUNED, None)
    assert route_of(svc, ADMIN, FINETUNED, "eu") == "a:eu"
    # us and spare share one endpoint: the finetune lives there whichever of them sends it.
    assert route_of(svc, _key(accounts=("us", "spare")), FINETUNED, None) == "a:spare,us"


def test_a_tracked_task_is_polled_through_the_account_named_else_the_first_its_key_may_use(svc):
    assert tracking_account(svc, ADMIN, None) == "eu"
    assert tracking_account(svc, ADMIN, "spare") == "spare"
    assert tracking_account(svc, _key(accounts=("spare", "us")), None) == "us"  # in BFL_ACCOUNTS' order
    assert tracking_account(svc, _key(region="us"), None) == "us"
    with pytest.raises(Forbidden):
        tracking_account(svc, _key(region="us"), "eu")
