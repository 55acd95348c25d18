"""One delivery attempt: the signed POST, sent to the addresses checked just before it.

The signature follows Stripe's scheme: `t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
The timestamp is signed with the body, so a receiver can refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from fieldcheck.webhooks import targets
from fieldcheck.webhooks.targets import Target, TargetRefused

USER_AGENT = "fieldcheck-webhooks/1"
EVENT_HEADER = "Fieldcheck-Event"
DELIVERY_HEADER = "Fieldcheck-Delivery"
SIGNATURE_HEADER = "Fieldcheck-Signature"


@dataclass(frozen=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    error: str | None


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The body exactly as sent (and signed): compact JSON in UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def attempt(
    url: str,
    *,
    secret: str,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    timeout_s: float,
    allow_private: bool,
) -> AttemptResult:
    """POST the delivery once. Never raises for the receiver's failures: they are the result."""
    try:
        target = targets.resolve_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        return AttemptResult(False, None, f"not sent: {exc}")
    body = body_bytes(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
    }
    try:
        status = _post(target, body, headers, timeout_s)
    except httpx.TimeoutException:
        return AttemptResult(False, None, f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return AttemptResult(False, None, f"could not deliver: {type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return AttemptResult(True, status, None)
    if 300 <= status < 400:
        return AttemptResult(False, status, f"the endpoint answered {status}; redirects are not followed")
    return AttemptResult(False, status, f"the endpoint answered {status}")


def _post(target: Target, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """The status of the POST, made to the checked addresses in turn until one connects.

    The URL's host is replaced by the address (Host header and TLS name stay the host's), so no
    second lookup can lead somewhere else. Proxies from the environment are ignored for the same
    reason. The answer's body is never read: only its status counts.
    """
    url = httpx.URL(target.url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    last_error: httpx.ConnectError | None = None
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        for address in target.addresses:
            request = client.build_request(
                "POST",
                url.copy_with(host=str(address), port=target.port),
                content=body,
                headers={**headers, "Host": target.netloc},
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            response.close()
            return response.status_code
    raise last_error or httpx.ConnectError("no address to connect to")
