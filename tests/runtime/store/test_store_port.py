"""The object-store port's streaming read, file upload and metadata, on S3 (the moto server) and a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import ObjectMissing, ObjectStoreUnavailable
from runtime.store.local import FolderStore
from runtime.store.port import ObjectStore
from runtime.store.s3 import S3Store, s3_client


@pytest.fixture(params=["s3", "folder"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "folder":
        return FolderStore(tmp_path / "store")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Store(request.getfixturevalue("bucket"), client=s3_client(endpoint, "us-east-1"))


def test_chunks_stream_the_bytes_in_pieces_no_larger_than_asked(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    store.put("a/b.bin", data, content_type="application/octet-stream")
    pieces = list(store.chunks("a/b.bin", 4096))
    assert b"".join(pieces) == data and all(len(p) <= 4096 for p in pieces) and len(pieces) == 3
    assert store.get("a/b.bin") == data


def test_chunks_of_a_missing_key_is_object_missing(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing):
        list(store.chunks("nope", 1024))


def test_put_file_keeps_metadata_where_the_store_keeps_it(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"payload" * 100)
    store.put_file("x/f.bin", source, metadata={"sha256": "abc"})
    info = store.head("x/f.bin")
    assert info is not None and info.size == 700 and store.get("x/f.bin") == source.read_bytes()
    assert dict(info.metadata) == ({"sha256": "abc"} if store.keeps_metadata else {})


def test_an_unreachable_s3_endpoint_is_object_store_unavailable(tmp_path: Path) -> None:
    from controller.substrate.processes import free_port

    dead = S3Store("b", client=s3_client(f"http://127.0.0.1:{free_port()}", "us-east-1"))
    with pytest.raises(ObjectStoreUnavailable):
        list(dead.chunks("k", 1024))
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(ObjectStoreUnavailable):
        dead.put_file("k", source, metadata={})


def test_if_match_overwrites_only_the_version_that_was_read(store: ObjectStore) -> None:
    from runtime.errors import WriteConflict

    assert store.read_versioned("log.jsonl") is None
    store.put("log.jsonl", b"one\n", create_only=True)
    read = store.read_versioned("log.jsonl")
    assert read is not None and read[0] == b"one\n" and read[1]
    store.put("log.jsonl", b"one\ntwo\n", if_match=read[1])
    with pytest.raises(WriteConflict):  # the version read before is gone
        store.put("log.jsonl", b"one\nlost\n", if_match=read[1])
    assert store.get("log.jsonl") == b"one\ntwo\n"
    with pytest.raises(ObjectMissing):
        store.put("absent.jsonl", b"x", if_match=read[1])
