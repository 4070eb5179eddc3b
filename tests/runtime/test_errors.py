"""The error hierarchy tells a worker what to retry (transient) and what to dead-letter (permanent)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from runtime import errors
from runtime.errors import PermanentError, PlatformError, TransientError, is_retryable
from runtime.settings import read_parameter

TRANSIENT = [errors.ObjectStoreUnavailable, errors.DatabaseUnavailable, errors.BusUnavailable, errors.SecretStoreUnavailable]
PERMANENT = [errors.RegistryError, errors.HandleMissing, errors.SchemaMissing, errors.EvidenceInvalid, errors.EvidenceConflict,
             errors.ObjectMissing, errors.WriteConflict, errors.TopicMissing, errors.DatabaseConflict,
             errors.AppendOnlyViolation, errors.DatabasePermissionDenied, errors.DatabaseStatementFailed,
             errors.DatabaseMigrationsPending]


@pytest.mark.parametrize("cls", TRANSIENT)
def test_unavailable_dependencies_are_transient_and_retryable(cls: type[PlatformError]) -> None:
    error = cls("down")
    assert isinstance(error, TransientError) and not isinstance(error, PermanentError)
    assert is_retryable(error)
    assert error.code.endswith("_UNAVAILABLE") and error.next_step


@pytest.mark.parametrize("cls", PERMANENT)
def test_bad_input_and_conflicts_are_permanent_and_not_retryable(cls: type[PlatformError]) -> None:
    error = cls("wrong")
    assert isinstance(error, PermanentError) and not isinstance(error, TransientError)
    assert not is_retryable(error)
    assert error.code and error.code != PlatformError.code


def test_an_ambiguous_publish_is_neither_retried_blindly_nor_dead_lettered() -> None:
    error = errors.PublishAmbiguous("unknown")
    assert not isinstance(error, TransientError | PermanentError)
    assert not is_retryable(error) and not is_retryable(ValueError("not ours"))


def test_every_project_error_code_is_unique() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, PlatformError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))


def test_an_unreachable_secret_store_is_secret_store_unavailable_not_object_store() -> None:
    from controller.substrate.processes import free_port

    client = boto3.client("ssm", region_name="eu-west-2", endpoint_url=f"http://127.0.0.1:{free_port()}",
                          config=Config(connect_timeout=1, retries={"max_attempts": 0}))
    with pytest.raises(errors.SecretStoreUnavailable) as caught:
        read_parameter(client, "/fraud-platform/local_parity/ig/api_key")
    assert caught.value.code == "SECRET_STORE_UNAVAILABLE" and is_retryable(caught.value)
    assert not isinstance(caught.value, errors.ObjectStoreUnavailable)
