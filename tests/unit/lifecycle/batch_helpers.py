"""What the batch tests of the lifecycle make alike: an app key's caller, a batch request of ``[pending]`` items, and
items as a body's are spooled."""

from __future__ import annotations

import time

from fluxhook.core.batch_items import BatchItem, ItemSpool
from fluxhook.lifecycle import key_admin
from fluxhook.lifecycle.batching import BatchRequest
from fluxhook.lifecycle.steps.callers import Caller

PRO = "flux-2-pro"


def app_caller(svc, **limits) -> Caller:
    """A new app key (``limits`` as POST /v1/keys takes them), as the caller of its requests."""
    key, _ = key_admin.create_key(svc, {"name": f"app-{time.time_ns()}", **limits}, time.time())
    return Caller(key)


def batch_request(n: int, **fields) -> BatchRequest:
    """``n`` items of flux-2-pro that stay pending at the simulator, each with its index as metadata."""
    return BatchRequest(PRO, ItemSpool.of(BatchItem({"prompt": f"[pending] item {i}"}, {"sku": i}) for i in range(n)),
                        **fields)


def spooled(*inputs: dict) -> ItemSpool:
    """Items of these inputs, as a body's would be spooled."""
    return ItemSpool.of(BatchItem(task_input) for task_input in inputs)
