"""fluxhook's exceptions: one root, subclasses named for what a caller would catch.

Every error carries a snake_case ``code`` and the HTTP ``status`` the API answers with,
so that views turn any of them into the API's JSON error shape in one place.
"""

from __future__ import annotations


class FluxhookError(Exception):
    """Root of every error fluxhook raises on purpose."""

    code = "internal_error"
    status = 500
    # Seconds after which the same call may succeed (the answer's Retry-After, with a 429 or 503); None: not said.
    retry_after: float | None = None

    def __init__(self, message: str = "", *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message or self.__class__.__doc__)
        if code:
            self.code = code
        if status:
            self.status = status
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self.args[0])


class RetryableError(FluxhookError):
    """A passing failure: the same call may succeed later."""


class ConfigError(FluxhookError):
    """The environment does not describe a runnable service."""

    code = "config_error"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class InvalidRequest(FluxhookError):
    """The client's request is malformed or names something that cannot be."""

    code = "invalid_request"
    status = 400


class UnknownField(InvalidRequest):
    """The request names a field (or query parameter) the API does not define: refused, never silently ignored."""

    code = "unknown_field"

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class UnknownModel(InvalidRequest):
    """The model is not in the catalog: BFL serves no such generation endpoint (or the operator has not added it)."""

    code = "unknown_model"

    def __init__(self, message: str, *, model: str):
        super().__init__(message)
        self.model = model


class InvalidItems(InvalidRequest):
    """Items of a batch that ``POST /v1/jobs`` would refuse, each named by its index: nothing was created."""

    code = "invalid_items"

    def __init__(self, message: str, *, items: list[dict]):
        super().__init__(message)
        self.items = items


class NotFound(FluxhookError):
    """Nothing has that id."""

    code = "not_found"
    status = 404


class BatchNotFound(NotFound):
    """No batch has that id (or it is another key's)."""


class Unauthorized(FluxhookError):
    """Credentials are missing or wrong."""

    code = "unauthorized"
    status = 401


class CallbackRefused(FluxhookError):
    """A callback refused for ``reason`` (bad_token, bad_secret, wrong_task, or its error's code); it answers
    as ``error`` does. ``job_id``: the job whose URL it came to, when that job exists."""

    def __init__(self, reason: str, error: FluxhookError, *, job_id: str | None = None):
        super().__init__(error.message, code=error.code, status=error.status)
        self.reason, self.error, self.job_id = reason, error, job_id


class Forbidden(FluxhookError):
    """The caller is known but may not do this."""

    code = "forbidden"
    status = 403


class ModelNotAllowed(Forbidden):
    """The app key may not use this model."""

    code = "model_not_allowed"


class EndUserBlocked(Forbidden):
    """The end user is blocked for the rest of its UTC day (its key's moderation limit, or an admin's block): nothing
    is created for it until an admin unblocks it or the day ends."""

    code = "end_user_blocked"


class KeyNotFound(NotFound):
    """No app key has this id."""


class KeyRevoked(FluxhookError):
    """The app key is revoked: it cannot be changed (create a new one)."""

    code = "key_revoked"
    status = 409


class InvalidIdempotencyKey(InvalidRequest):
    """The Idempotency-Key header is empty, longer than 255 characters, or not printable."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReused(FluxhookError):
    """The Idempotency-Key was first used with another request body."""

    code = "idempotency_key_reused"
    status = 422


class IdempotencyKeyInUse(FluxhookError):
    """The first request with this Idempotency-Key is still being handled."""

    code = "idempotency_key_in_use"
    status = 409


class RateLimited(FluxhookError):
    """The caller holds as much as fluxhook keeps for one caller; it may go on after ``retry_after`` seconds."""

    code = "rate_limited"
    status = 429


class TooManyStreams(RateLimited):
    """The caller holds ``MAX_STREAMS_PER_CALLER`` open streams already; one must close first."""

    code = "too_many_streams"


class TooManyAnswers(RateLimited):
    """The caller is being written ``MAX_ANSWERS_PER_CALLER`` answers already (ZIPs, files); one must end first."""

    code = "too_many_answers"


class AnswersBusy(FluxhookError):
    """This web process writes as many answers as it may at once; another try may find room."""

    code = "answers_busy"
    status = 503


class SearchTooLong(FluxhookError):
    """A search of prompts ran past its time bound: narrowed (a model, a status, a key, a longer text), it ends in
    time."""

    code = "search_too_long"
    status = 503


class QueueFull(RateLimited):
    """The app key (or the admin tokens, together one) holds as many queued jobs and batch items as it may (its
    ``max_queued``, else ``MAX_QUEUED_PER_KEY``): nothing was created. Room comes back as its jobs go to BFL."""

    code = "queue_full"

    def __init__(self, message: str, *, queued: int, limit: int, retry_after: float | None = None):
        super().__init__(message, retry_after=retry_after)
        # What the owner held queued (its batches' room being made included) and its limit, when it was refused.
        self.queued, self.limit = queued, limit


class StreamsBusy(FluxhookError):
    """This web process holds as many streams as it may; another try may reach another process, or find room."""

    code = "streams_busy"
    status = 503


class BatchInterrupted(RetryableError):
    """A batch's making stopped before its last item while its request went on (the process stalled past the making
    lease): the batch holds the items made and is canceled; sent again, a new one is made."""

    code = "creation_interrupted"
    status = 503


class BatchesBusy(RetryableError):
    """As many batches as are made at once are being made, and this one found no turn in time: sent again in a few
    seconds (the same ``Idempotency-Key`` makes it once), it is made."""

    code = "batches_busy"
    status = 503


class JobNotFound(NotFound):
    """No job has that id."""


class AlreadyEnded(FluxhookError):
    """The job has ended (a terminal status): there is nothing left to cancel, and it stays as it is."""

    code = "already_ended"
    status = 409


class SendUnderWay(RetryableError):
    """The job is being sent to BFL at this moment and BFL has not answered yet: asked again shortly, it can be
    ended as BFL's answer decides (unsent, or as a task BFL has)."""

    code = "send_under_way"
    status = 503


class InvalidCancelAfter(FluxhookError):
    """The ``Cancel-After`` header is no duration from 5 s to 24 h. Not an ``InvalidRequest``: the BFL-compatible
    routes answer a body BFL refuses with BFL's 422, and this header is fluxhook's, answered 400 on every route."""

    code = "invalid_cancel_after"
    status = 400


class DeliveryNotFound(NotFound):
    """No notification message of the caller's has that id."""


class TaskNotTrackable(FluxhookError):
    """A track of a BFL task that fluxhook itself sent for another owner's job: that job alone follows it, and the
    refusal names nothing of it."""

    code = "task_not_trackable"
    status = 409


class NotReady(FluxhookError):
    """What was asked for does not exist yet; asking again later may succeed."""

    code = "not_ready"
    status = 404


class Gone(FluxhookError):
    """What was asked for no longer exists and never will again."""

    code = "gone"
    status = 410


class RangeNotSatisfiable(FluxhookError):
    """The requested byte range lies outside the stored file."""

    code = "range_not_satisfiable"
    status = 416

    def __init__(self, message: str = "", *, size: int):
        super().__init__(message)
        self.size = size


class PayloadTooLarge(FluxhookError):
    """The request body is larger than this endpoint accepts."""

    code = "payload_too_large"
    status = 413


# --- BFL -------------------------------------------------------------------

class BFLError(FluxhookError):
    """BFL answered with an error or could not be reached."""

    code = "bfl_error"
    status = 502


class BFLUnavailable(BFLError, RetryableError):
    """BFL could not be reached or answered 5xx, after retries."""

    code = "bfl_unavailable"


class BFLAccountDown(BFLUnavailable):
    """A BFL account cannot take a task now (503 or another 5xx to a submission, or no connection): nothing was
    accepted, so the task may go through another account; BFL's ``Retry-After`` in seconds, None without one."""

    def __init__(self, message: str = "", retry_after: float | None = None, *, out_of_capacity: bool = False):
        super().__init__(message, retry_after=retry_after)
        # A 503: BFL is out of capacity (with one account, that waits like a 429).
        self.out_of_capacity = out_of_capacity


class BFLSubmissionUncertain(BFLError):
    """BFL did not answer a submission in time; it may exist, so it is not sent again."""

    code = "bfl_unavailable"


class BFLRedirectRefused(BFLError):
    """BFL redirected a request to where the API key must not go (a host off the allowlist); nothing was sent there."""

    code = "bfl_redirect_refused"


class BFLRateLimited(BFLError, RetryableError):
    """BFL answered 429: too many tasks in flight."""

    code = "bfl_rate_limited"
    status = 429


class BFLRejected(BFLError):
    """BFL refused the request as malformed (400, 404, 405, 413, 422)."""

    code = "bfl_rejected"
    status = 400

    def __init__(self, message: str = "", *, bfl_status: int | None = None, detail=None):
        super().__init__(message)
        # BFL's own answer, for the BFL-compatible API to pass through as BFL gave it.
        self.bfl_status = bfl_status
        self.detail = detail


class InputRefused(BFLRejected):
    """The input is one BFL's schema refuses (the catalog's schema of its model), found before anything was created,
    counted or sent: ``detail`` is the 422 BFL would have answered."""

    def __init__(self, message: str, *, detail: list):
        super().__init__(message, bfl_status=422, detail=detail)


class BFLAuthFailed(BFLError):
    """BFL refused the API key (401/403)."""

    code = "bfl_auth_failed"


class InsufficientCredits(BFLError):
    """BFL answered 402: the account has no credits left."""

    code = "insufficient_credits"
    status = 402


class BudgetExceeded(FluxhookError):
    """Today's credits (BFL_DAILY_CREDIT_LIMIT) are spent: no new submission until the next UTC day."""

    code = "budget_exceeded"
    status = 402


class EndUserBudgetExceeded(BudgetExceeded):
    """One end user's ``daily_credits`` with its app key are spent: its new submissions are refused until the next UTC
    day (``retry_after``, the seconds until then, its answer's ``Retry-After``: the one 402 that has it), while the
    key's other end users go on."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, retry_after=retry_after)


class HostNotAllowed(FluxhookError):
    """A URL points to a host that the allowlists or address rules refuse."""

    code = "host_not_allowed"
    status = 400


# --- downloads -------------------------------------------------------------

class DownloadError(FluxhookError):
    """A result image could not be downloaded and stored."""

    code = "download_failed"
    status = 502


class TransientDownloadError(DownloadError, RetryableError):
    """The delivery host timed out, dropped the connection or answered 5xx."""


class ResultURLExpired(DownloadError):
    """The delivery host answered 403/404/410: the signed URL is no longer valid."""

    code = "result_expired"


class InvalidResult(DownloadError):
    """The downloaded bytes are neither an accepted image (JPEG, PNG, WebP) nor a whole, readable MP4 video.

    Its code keeps the name the API gave it before there were videos."""

    code = "not_an_image"


class ImageTooLarge(DownloadError):
    """The image is larger than MAX_IMAGE_BYTES."""

    code = "too_large"


class NotReplicated(RetryableError):
    """Redis did not confirm in time that its replicas have a request's writes: nothing is acknowledged."""

    code = "not_replicated"
    status = 503
    retry_after = 1


class FailedOver(NotReplicated):
    """Redis's primary changed while a request or task wrote: what it wrote before may be lost."""


class ReplicasMissing(NotReplicated):
    """Redis's primary has fewer replicas attached than required, not merely slow ones: it may be a primary the
    sentinels already replaced (after a planned failover the old one goes on taking the writes of the
    connections it has until they make it a replica, and then drops them), so what it took may be lost."""


class StorageError(RetryableError):
    """The image store refused a read or a write (a full disk or an outage may pass)."""

    code = "storage_error"


# --- variants of stored images ---------------------------------

class InvalidVariant(InvalidRequest):
    """A variant's ``w``, ``format`` or ``q`` is not one fluxhook makes: the message names it and what is allowed."""

    code = "invalid_variant"

    def __init__(self, message: str, *, parameter: str):
        super().__init__(message)
        self.parameter = parameter


class VariantsBusy(RetryableError):
    """This web process's variant makers have as many requests waiting as they may (or one waited past its bound):
    asked again after ``retry_after``, the variant is made, or served if made meanwhile."""

    code = "variants_busy"
    status = 503


class VariantFailed(FluxhookError):
    """The stored file could not be made into the variant asked for (its bytes do not decode as an image, or it is
    larger than a variant is made of): the original is still served without parameters."""

    code = "variant_failed"
    status = 422
