"""The ingress against its own OpenAPI document (schemathesis, a real ``greenq ingress`` process): no 5xx
but the documented 503, one stored iff 200, and without the valid token every webhook request refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from redis import Redis
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, negative_data_rejection

from greenq.core.settings import CommonSettings
from tests.conftest import TOKEN
from tests.support.hostile import FUZZ, WEBHOOK, record
from tests.support.metrics import scrape
from tests.support.ordering import waiting_envelopes
from tests.support.real_ingress import RealIngress

pytestmark = pytest.mark.usefixtures("hostile_tally")  # GREENQ_HOSTILE_TALLY: the per-class counts

Check = Callable[..., Any]
SCHEMATHESIS = settings(FUZZ, max_examples=60)
#: The partition count of the ingress under test (it sets none).
PARTITIONS: int = CommonSettings.model_fields["partitions"].default


def run_schemathesis(
    real_ingress: RealIngress,
    redis_conn: Redis,
    headers: dict[str, str] | None,
    mode: GenerationMode,
    kind: str,
) -> Counter[str]:
    """Every operation of the live ingress's OpenAPI document, fuzzed by schemathesis; how many requests
    went to each path. Without ``headers``, schemathesis generates the Authorization header."""
    schema = schemathesis.openapi.from_url(f"{real_ingress.url}/openapi.json")
    session = requests.Session()
    calls: Counter[str] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.path != WEBHOOK:
            continue  # the GET endpoints take no input, so there is nothing to negate
        calls[operation.path] += fuzz_operation(operation, redis_conn, session, headers, mode, kind)
    return calls


def fuzz_operation(
    operation: Any,
    redis_conn: Redis,
    session: requests.Session,
    headers: dict[str, str] | None,
    mode: GenerationMode,
    kind: str,
) -> int:
    """Schemathesis's checks plus ours: no 5xx but the documented 503, one stored iff 200, and a webhook
    request without the valid token refused 401 with nothing stored. Returns how many requests it sent."""
    # /metrics is documented as JSON (a known defect, see test_metrics_content_type_is_documented).
    excluded: list[Check] = [content_type_conformance] if operation.path == "/metrics" else []
    if operation.path == WEBHOOK:
        # By design: an authenticated body that is not an object is stored (200), never refused, because a
        # refusal stalls the GREEN API instance; the workers dead-letter it (tests/test_body_classes.py).
        excluded.append(negative_data_rejection)
    sent = 0

    @SCHEMATHESIS
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def call(case: Any) -> None:
        nonlocal sent
        before = stored_notifications(redis_conn)
        response = case.call(session=session)
        stored = stored_notifications(redis_conn) - before
        sent += 1
        record(kind, response.status_code, stored)
        documented_503 = response.status_code == 503 and case.path == WEBHOOK
        assert response.status_code < 500 or documented_503, response.text[:300]
        assert stored == (1 if response.status_code == 200 and case.method == "POST" else 0)
        if headers is None and case.path == WEBHOOK:  # a generated token is never the valid one
            assert (response.status_code, stored) == (401, 0), (case.headers, response.text[:300])
            assert response.json()["status"] == "refused"
        case.validate_response(response, excluded_checks=excluded)

    call()
    return sent


def stored_notifications(redis: Redis) -> int:
    """Notifications the ingress stored, in either mode: partition entries (the default) or batch jobs."""
    return len(waiting_envelopes(redis, PARTITIONS))


def unauthorized_refusals(real_ingress: RealIngress) -> float:
    """The ingress's own count of requests it refused for their token."""
    return scrape(f"{real_ingress.url}/metrics", 'greenq_ingress_requests_total{outcome="unauthorized"}')


def test_schemathesis_without_a_valid_token(real_ingress: RealIngress, redis_conn: Redis) -> None:
    refused_before = unauthorized_refusals(real_ingress)

    calls = run_schemathesis(
        real_ingress, redis_conn, None, GenerationMode.POSITIVE, "schemathesis, generated token"
    )

    assert calls[WEBHOOK] > 0, calls
    assert stored_notifications(redis_conn) == 0
    assert unauthorized_refusals(real_ingress) - refused_before == calls[WEBHOOK]  # each one counted


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_schemathesis_with_the_token(
    real_ingress: RealIngress, redis_conn: Redis, mode: GenerationMode
) -> None:
    run_schemathesis(real_ingress, redis_conn, {"Authorization": TOKEN}, mode, f"schemathesis {mode}, token")


def test_metrics_content_type_is_documented(real_ingress: RealIngress) -> None:
    document = requests.get(f"{real_ingress.url}/openapi.json", timeout=10).json()

    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
