"""Bytes that went bad on disk. A blob-log record whose payload no longer
matches its SHA-256 is never served: a GET that starts in it answers an
error before any body (a 200 with a cut body would pass for a short object
with clients that do not check the length), and the object's other chunks
and other objects still read back."""

import glob
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def test_a_get_starting_in_a_bad_chunk_answers_500_not_a_cut_200(fresh_node):
    node = fresh_node(cores=1)
    s3 = node.client()
    s3.create_bucket(Bucket="rot")
    # The first object written: its first chunk is the first record of
    # the shard's first segment.
    bad = os.urandom(3 * MIB)
    s3.put_object(Bucket="rot", Key="bad", Body=bad)
    good = os.urandom(2 * MIB)
    s3.put_object(Bucket="rot", Key="good", Body=good)
    segments = sorted(glob.glob(os.path.join(node.data_dir, "shard-0000", "blobs", "segment-*.blob")))
    flip_byte(segments[0], 512 * 1024)  # inside the first chunk's payload

    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket="rot", Key="bad")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert failed.value.response["Error"]["Code"] == "InternalError"

    # A range past the bad chunk, and another object, read back intact.
    tail = s3.get_object(Bucket="rot", Key="bad", Range=f"bytes={2 * MIB}-")
    assert tail["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert tail["Body"].read() == bad[2 * MIB:]
    body = s3.get_object(Bucket="rot", Key="good")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(good).digest()
