"""The signature of webhook deliveries, as receivers verify it."""

from __future__ import annotations

import hashlib
import hmac

from fieldcheck.webhooks.sending import body_bytes, signature_header


def test_signature_format() -> None:
    body = body_bytes({"id": "1", "type": "export.ready", "data": {"name": "Ünïcode"}})
    assert body == '{"id":"1","type":"export.ready","data":{"name":"Ünïcode"}}'.encode()
    header = signature_header("whsec_test", 1_700_000_000, body)
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
