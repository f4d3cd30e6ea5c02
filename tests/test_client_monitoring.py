"""The client's monitoring calls against the real server: feedback and the log's summary."""

import uuid

import pytest

from apps.client import ClientError, PenguinClient

from .conftest import RECORD

pytestmark = pytest.mark.slow


def test_feedback_and_monitoring_through_the_client(api_url):
    with PenguinClient(api_url) as client:
        answer = client.predict_response("species-classifier", [RECORD, RECORD])
        request_id = answer["request_id"]
        first = client.feedback("species-classifier", request_id, "Gentoo", row=1)
        again = client.feedback("species-classifier", request_id, "Gentoo", row=1)
        assert (first["status"], again["status"]) == ("recorded", "unchanged")
        with pytest.raises(ClientError) as error:
            client.feedback("species-classifier", uuid.uuid4().hex, "Gentoo")
        assert error.value.status == 404 and error.value.code == "prediction_not_found"
        with pytest.raises(ClientError) as error:
            client.feedback("species-classifier", request_id, "Emperor")
        assert error.value.status == 422
        summary = client.monitoring("species-classifier", limit=3)
        assert summary["predictions"] >= 2 and summary["labelled"] >= 1
        assert len(summary["recent"]) <= 3
        assert any(r["request_id"] == request_id for r in summary["recent"])
