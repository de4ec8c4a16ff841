"""Small objects kept in their manifests (`--embed-max`, 4 KiB by default):
they read, range, copy, overwrite and survive kill -9 like any other object,
and the flag decides which objects qualify."""

import hashlib
import os
import subprocess

from conftest import metric_sum

MIB = 1 << 20
EMBEDDED = "shoal_s3_embedded_objects_total"


def test_objects_up_to_the_limit_are_embedded_and_read_back(node, s3, bucket):
    before = metric_sum(node, EMBEDDED)
    bodies = {f"k{size}": os.urandom(size) for size in (1, 100, 4096)}
    for key, body in bodies.items():
        put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/x-small",
                            Metadata={"kind": "tiny"}, ChecksumAlgorithm="CRC32")
        assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert metric_sum(node, EMBEDDED) == before + len(bodies)
    # One byte over the limit is stored as a chunk.
    s3.put_object(Bucket=bucket, Key="over", Body=os.urandom(4097))
    assert metric_sum(node, EMBEDDED) == before + len(bodies)

    for key, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        assert got["ContentType"] == "text/x-small"
        assert got["Metadata"] == {"kind": "tiny"}
        assert got["ContentLength"] == len(body)
        assert "ChecksumCRC32" in got
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(body)
        assert head["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()

    body = bodies["k4096"]
    part = s3.get_object(Bucket=bucket, Key="k4096", Range="bytes=100-199")
    assert part["Body"].read() == body[100:200]
    assert part["ContentRange"] == "bytes 100-199/4096"
    assert s3.get_object(Bucket=bucket, Key="k4096", Range="bytes=-10")["Body"].read() == body[-10:]
    assert s3.get_object(Bucket=bucket, Key="k1", Range="bytes=0-")["Body"].read() == bodies["k1"]

    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert {o["Key"]: o["Size"] for o in listed} == {"k1": 1, "k100": 100, "k4096": 4096, "over": 4097}


def test_copies_of_an_embedded_object(s3, bucket):
    body = os.urandom(3000)
    s3.put_object(Bucket=bucket, Key="source", Body=body, Metadata={"a": "1"})
    # Several destination keys, so some land on another shard than the source.
    for i in range(6):
        s3.copy_object(Bucket=bucket, Key=f"copy-{i}", CopySource={"Bucket": bucket, "Key": "source"})
        got = s3.get_object(Bucket=bucket, Key=f"copy-{i}")
        assert got["Body"].read() == body
        assert got["Metadata"] == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="source", CopySource={"Bucket": bucket, "Key": "source"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"})
    got = s3.get_object(Bucket=bucket, Key="source")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"b": "2"}

    # A part copied from an embedded source becomes chunks of the part.
    big = os.urandom(5 * MIB)
    s3.put_object(Bucket=bucket, Key="big-part", Body=big)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "big-part"})
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "source"},
                                 CopySourceRange="bytes=10-2009")
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == big + body[10:2010]


def test_overwrites_between_embedded_and_chunked(s3, bucket):
    for body in (b"tiny", os.urandom(2 * MIB + 1), b"tiny again", b"", os.urandom(4096)):
        s3.put_object(Bucket=bucket, Key="flip", Body=body)
        assert s3.get_object(Bucket=bucket, Key="flip")["Body"].read() == body
    s3.delete_object(Bucket=bucket, Key="flip")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_embedded_objects_survive_kill9(fresh_node):
    node = fresh_node()
    s3 = node.client()
    s3.create_bucket(Bucket="durable")
    bodies = {f"obj-{i}": os.urandom(1 + i * 37) for i in range(64)}
    for key, body in bodies.items():
        s3.put_object(Bucket="durable", Key=key, Body=body)
    node.kill9()
    node.start()
    s3 = node.client()
    for key, body in bodies.items():
        assert s3.get_object(Bucket="durable", Key=key)["Body"].read() == body, key


def test_embed_max_zero_turns_it_off_and_too_large_is_refused(fresh_node, tmp_path):
    node = fresh_node(extra_args=["--embed-max", "0"])
    s3 = node.client()
    s3.create_bucket(Bucket="chunked")
    s3.put_object(Bucket="chunked", Key="small", Body=b"small but chunked")
    assert s3.get_object(Bucket="chunked", Key="small")["Body"].read() == b"small but chunked"
    assert metric_sum(node, EMBEDDED) == 0

    binary = os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")
    refused = subprocess.run([binary, "serve", "--data-dir", str(tmp_path / "never"), "--embed-max", "1MiB"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "--embed-max" in refused.stderr and "65536" in refused.stderr


def test_a_signed_payload_is_checked_and_embedded(node, bucket):
    before = metric_sum(node, EMBEDDED)
    s3 = node.client(s3_config={"payload_signing_enabled": True})
    body = os.urandom(4000)
    s3.put_object(Bucket=bucket, Key="signed", Body=body)
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == body
    assert metric_sum(node, EMBEDDED) == before + 1
