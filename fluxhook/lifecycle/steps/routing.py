"""Routing a job to BFL accounts: the accounts a new job may use, as its key and request narrow them.

Which of them sends it is decided later, in the atomic step that gives it a slot (``store.slots``): the least
busy that is not cooling down and has room. This step only records the job's route, so residency and billing hold
whichever process hands the slot out.
"""

from __future__ import annotations

from fluxhook.core.accounts import ANY_ROUTE, is_finetuned, route_for
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.services import Services


def route_of(svc: Services, caller: Caller, model: str, account: str | None) -> str | None:
    """The route of a new job of ``model`` for ``caller`` naming ``account`` (None: any its key may use); None when it
    may use every account. ``Forbidden`` for an account its key may not use, ``InvalidRequest`` for one that does
    not exist or a finetune that could reach more than one endpoint."""
    key = caller.key
    route = route_for(svc.config.accounts, key_accounts=key.accounts if key else None,
                      key_region=key.region if key else None, account=account, finetuned=is_finetuned(model))
    return None if route == ANY_ROUTE else route


def tracking_account(svc: Services, caller: Caller, account: str | None) -> str:
    """The account a task sent elsewhere is polled through: the one named, else the first the caller's key may use."""
    route = route_of(svc, caller, "", account)
    return svc.slots.accounts_for([route])[route][0]
