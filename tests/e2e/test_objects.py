"""Object operations through boto3: every operation, payload modes, ranges,
big objects, errors."""

import base64
import hashlib
import os
import socket

import pytest
from botocore.exceptions import ClientError

import rawhttp

MIB = 1 << 20


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_put_get_head_delete_round_trip(s3, bucket):
    body = os.urandom(3 * MIB + 123)
    put = s3.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue", "Shape": "round"})
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()

    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue", "shape": "round"}
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(body)

    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert head["Metadata"]["color"] == "blue"

    s3.delete_object(Bucket=bucket, Key="dir/a b+c.bin")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert error_code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert status(e) == 404


def test_overwrite_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second version"
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert got["ContentType"] == "binary/octet-stream"


def test_missing_bucket_and_key_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")
    assert error_code(e) == "NoSuchBucket" and status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(e) == "NoSuchKey"
    # Deleting a missing key succeeds, as in S3.
    s3.delete_object(Bucket=bucket, Key="nope")


SDK_MODES = {
    # botocore's default: a flexible checksum on every PUT.
    "default": {},
    # x-amz-content-sha256 carries the body's SHA-256.
    "signed": {"s3_config": {"payload_signing_enabled": True}},
    # UNSIGNED-PAYLOAD with no checksum at all.
    "unsigned": {"request_checksum_calculation": "when_required"},
}


@pytest.mark.parametrize("mode", sorted(SDK_MODES))
def test_sdk_payload_modes(node, bucket, mode):
    s3 = node.client(**SDK_MODES[mode])
    body = os.urandom(2 * MIB + 7)
    s3.put_object(Bucket=bucket, Key=f"mode-{mode}", Body=body)
    assert s3.get_object(Bucket=bucket, Key=f"mode-{mode}")["Body"].read() == body


def test_streaming_signed_payload(node, s3, bucket):
    payload = os.urandom(MIB + 5000)
    code, _, body = rawhttp.put_streaming_signed(node, bucket, "streamed", payload)
    assert code == 200, body
    assert s3.get_object(Bucket=bucket, Key="streamed")["Body"].read() == payload


def test_streaming_signed_payload_bad_chunk_signature_is_rejected(node, s3, bucket):
    payload = os.urandom(200_000)
    code, _, body = rawhttp.put_streaming_signed(node, bucket, "forged", payload, tamper_chunk=2)
    assert code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="forged")


def test_unsigned_payload_with_trailer_checksum(node, s3, bucket):
    payload = os.urandom(300_000)
    code, headers, body = rawhttp.put_unsigned_trailer(node, bucket, "trailer", payload)
    assert code == 200, body
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == payload

    code, _, body = rawhttp.put_unsigned_trailer(node, bucket, "trailer-bad", payload,
                                                 trailer_value=rawhttp.crc32_b64(b"other"))
    assert code == 400 and b"<Code>BadDigest</Code>" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="trailer-bad")


def test_checksum_headers_are_verified_and_returned(s3, bucket):
    body = b"checksummed body" * 1000
    put = s3.put_object(Bucket=bucket, Key="ck", Body=body, ChecksumAlgorithm="CRC32")
    assert put.get("ChecksumCRC32") == rawhttp.crc32_b64(body)
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == put["ChecksumCRC32"]
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key="ck")
    sha = s3.put_object(Bucket=bucket, Key="ck2", Body=body, ChecksumAlgorithm="SHA256")
    assert sha.get("ChecksumSHA256")


def test_wrong_checksum_header_is_bad_digest(node, bucket):
    path = f"/{bucket}/badsum"
    headers = rawhttp.signed_headers(node, "PUT", path, {"x-amz-checksum-crc32": rawhttp.crc32_b64(b"no")})
    code, _, body = rawhttp.send(node, "PUT", path, headers, b"yes")
    assert code == 400 and b"<Code>BadDigest</Code>" in body


def test_content_sha256_mismatch(node, bucket):
    path = f"/{bucket}/shamismatch"
    wrong = hashlib.sha256(b"something else").hexdigest()
    headers = rawhttp.signed_headers(node, "PUT", path, {}, payload_hash=wrong)
    code, _, body = rawhttp.send(node, "PUT", path, headers, b"actual body")
    assert code == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body


def test_content_md5_mismatch(s3, bucket):
    import base64
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"abc",
                      ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode())
    assert error_code(e) == "BadDigest"


def test_malformed_chunked_body_gets_xml_error(node, s3, bucket):
    path = f"/{bucket}/garbage"
    body = b"zz;chunk-signature=nothex\r\nhello\r\n"
    headers = rawhttp.signed_headers(node, "PUT", path, {
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "5",
        "Content-Length": str(len(body)),
    }, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    code, _, resp = rawhttp.send(node, "PUT", path, headers, body)
    assert code in (400, 403) and b"<Error><Code>" in resp
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="garbage")


def test_a_body_without_a_length_is_411_unless_chunked(node, bucket):
    path = f"/{bucket}/nolength"
    # No Content-Length and no chunking: the body's end cannot be known.
    headers = rawhttp.signed_headers(node, "PUT", path)
    headers.setdefault("Host", f"127.0.0.1:{node.s3_port}")
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", node.s3_port), timeout=10) as conn:
        conn.sendall((head + "Connection: close\r\n\r\n").encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 411"), answer
    assert b"<Code>MissingContentLength</Code>" in answer
    # Transfer-Encoding: chunked without Content-Length streams in.
    headers = rawhttp.signed_headers(node, "PUT", path, {"Transfer-Encoding": "chunked"})
    import requests
    answer = requests.put(node.endpoint + path, headers=headers, data=iter([b"ab", b"c"]),
                          timeout=10)
    assert answer.status_code == 200, answer.text


def test_huge_content_length_is_entity_too_large(node, bucket):
    path = f"/{bucket}/huge"
    headers = rawhttp.signed_headers(node, "PUT", path, {"Content-Length": str(6 << 30), "Expect": "100-continue"})
    first, _ = rawhttp.expect_continue_with_headers(node, path, headers)
    assert first.startswith("HTTP/1.1 413"), first


def test_expect_continue_is_honoured(node, s3, bucket):
    payload = os.urandom(100_000)
    first, final = rawhttp.expect_continue(node, bucket, "continued", payload)
    assert first.startswith("HTTP/1.1 100"), first
    assert final.startswith("HTTP/1.1 200"), final
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == payload
    # A request that will fail is answered instead of 100 Continue.
    first, _ = rawhttp.expect_continue(node, "no-such-bucket-x", "k", payload)
    assert first.startswith("HTTP/1.1 404"), first


RANGES = [
    ("bytes=0-0", 0, 0),
    ("bytes=1048570-1048580", 1048570, 1048580),  # crosses the first chunk boundary
    ("bytes=1048576-2097151", 1048576, 2097151),  # exactly the second chunk
    ("bytes=2097000-", 2097000, None),            # into the short last chunk
    ("bytes=-10", None, None),
    ("bytes=5-99999999", 5, None),
]


def test_ranges_across_chunk_boundaries(s3, bucket):
    body = os.urandom(2 * MIB + 4321)
    s3.put_object(Bucket=bucket, Key="ranged", Body=body)
    for header, first, last in RANGES:
        got = s3.get_object(Bucket=bucket, Key="ranged", Range=header)
        if first is None:
            expected = body[-10:]
            first = len(body) - 10
        else:
            expected = body[first:(last + 1 if last is not None else None)]
        assert got["Body"].read() == expected, header
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {first}-{first + len(expected) - 1}/{len(body)}"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="ranged", Range=f"bytes={len(body)}-")
    assert status(e) == 416 and error_code(e) == "InvalidRange"


def test_256_mib_round_trip(s3, bucket, tmp_path):
    size = 256 * MIB
    block = os.urandom(MIB)
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MIB):
            chunk = bytes([i % 251]) + block[1:]
            f.write(chunk)
            digest.update(chunk)
    with open(path, "rb") as f:
        s3.put_object(Bucket=bucket, Key="big", Body=f)
    got = s3.get_object(Bucket=bucket, Key="big")
    read = hashlib.sha256()
    total = 0
    for piece in got["Body"].iter_chunks(MIB):
        read.update(piece)
        total += len(piece)
    assert total == size
    assert read.hexdigest() == digest.hexdigest()


def test_wrong_secret_is_403(node, bucket):
    bad = node.client(secret="not-the-secret-key-at-all-000000000000000")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert status(e) == 403 and error_code(e) == "SignatureDoesNotMatch"
    unknown = node.client(access="AKIDUNKNOWNUNKNOWN00")
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert status(e) == 403 and error_code(e) == "InvalidAccessKeyId"


def test_anonymous_request_is_denied(node, bucket):
    code, _, body = rawhttp.send(node, "GET", f"/{bucket}/k", {})
    assert code == 403 and b"<Code>AccessDenied</Code>" in body


def test_presigned_urls(node, bucket):
    import urllib.request
    s3 = node.client(signature_version="s3v4")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    with urllib.request.urlopen(get_url) as r:
        assert r.read() == b"presigned body"
    tampered = get_url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered)
    assert e.value.code == 403


def test_conditional_get_and_head(s3, bucket):
    import datetime
    put = s3.put_object(Bucket=bucket, Key="cond", Body=b"conditional body")
    etag = put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="cond")
    modified = head["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="cond", IfMatch=etag)["Body"].read() == b"conditional body"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfMatch='"0000"')
    assert status(e) == 412 and error_code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert status(e) == 304
    later = modified + datetime.timedelta(days=1)
    earlier = modified - datetime.timedelta(days=1)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfModifiedSince=later)
    assert status(e) == 304
    assert s3.get_object(Bucket=bucket, Key="cond", IfModifiedSince=earlier)["Body"].read() == b"conditional body"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfUnmodifiedSince=earlier)
    assert status(e) == 412


def test_delete_objects_batch(s3, bucket):
    keys = [f"batch/{i}" for i in range(30)] + ["batch/a&b <c>"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:20]]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == sorted(keys[:20])
    assert not answer.get("Errors")
    # Quiet mode lists only failures; missing keys are not failures.
    answer = s3.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": [{"Key": k} for k in keys[20:] + ["missing"]]})
    assert not answer.get("Deleted") and not answer.get("Errors")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="batch/")


def test_delete_objects_rejects_bad_lists(node, bucket):
    import base64
    for body in [b"<Delete></Delete>", b"not xml at all", b"<Delete><Object><Key>a</Key></Object>"]:
        path = f"/{bucket}"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        headers = rawhttp.signed_headers(node, "POST", path + "?delete", {"Content-MD5": md5})
        code, _, resp = rawhttp.send(node, "POST", path + "?delete", headers, body)
        assert code == 400 and b"<Code>MalformedXML</Code>" in resp, (body, resp)


def test_copy_object(s3, bucket):
    body = os.urandom(3 * MIB + 99)
    s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="text/x-src", Metadata={"k": "v"})
    s3.create_bucket(Bucket=bucket + "-dst")
    # Many destinations, so both same-shard (shared refs) and cross-shard
    # (bytes copied) copies happen.
    for i in range(8):
        for dst_bucket in [bucket, bucket + "-dst"]:
            out = s3.copy_object(Bucket=dst_bucket, Key=f"copy{i}", CopySource={"Bucket": bucket, "Key": "src"})
            assert out["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
            got = s3.get_object(Bucket=dst_bucket, Key=f"copy{i}")
            assert got["Body"].read() == body
            assert got["ContentType"] == "text/x-src" and got["Metadata"] == {"k": "v"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="text/x-new", Metadata={"fresh": "yes"})
    got = s3.head_object(Bucket=bucket, Key="replaced")
    assert got["ContentType"] == "text/x-new" and got["Metadata"] == {"fresh": "yes"}
    # Deleting the source leaves the copies whole.
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=bucket + "-dst", Key="copy3")["Body"].read() == body


def test_copy_object_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert status(e) == 400 and error_code(e) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"m": "1"})
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"m": "1"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "absent"})
    assert error_code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": "no-such-source-bucket", "Key": "k"})
    assert error_code(e) == "NoSuchBucket"


def test_standard_headers_round_trip(s3, bucket):
    import datetime
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(Bucket=bucket, Key="headers", Body=b"h", CacheControl="max-age=60",
                  ContentDisposition='attachment; filename="h.txt"', ContentEncoding="identity",
                  ContentLanguage="de", Expires=expires)
    for got in [s3.get_object(Bucket=bucket, Key="headers"), s3.head_object(Bucket=bucket, Key="headers")]:
        assert got["CacheControl"] == "max-age=60"
        assert got["ContentDisposition"] == 'attachment; filename="h.txt"'
        assert got["ContentEncoding"] == "identity"
        assert got["ContentLanguage"] == "de"
        assert got["Expires"] == expires


def _crc64nvme_table():
    poly = 0x9A6C9329AC4BC9B5  # CRC-64/NVME, reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64nvme_table()


def crc64nvme_b64(data):
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = _CRC64_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFFFFFFFFFF
    return base64.b64encode(crc.to_bytes(8, "big")).decode()


def test_sha1_and_crc64nvme_checksums(s3, bucket):
    assert crc64nvme_b64(b"123456789") == base64.b64encode(bytes.fromhex("ae8b14860a799888")).decode()
    body = os.urandom(300_000)
    sha1 = base64.b64encode(hashlib.sha1(body).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="sha1", Body=body, ChecksumAlgorithm="SHA1")
    assert put["ChecksumSHA1"] == sha1
    head = s3.head_object(Bucket=bucket, Key="sha1", ChecksumMode="ENABLED")
    assert head["ChecksumSHA1"] == sha1
    crc = crc64nvme_b64(body)
    put = s3.put_object(Bucket=bucket, Key="crc64", Body=body, ChecksumCRC64NVME=crc)
    assert put["ChecksumCRC64NVME"] == crc
    got = s3.get_object(Bucket=bucket, Key="crc64", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == crc
    assert got["Body"].read() == body
    for wrong in ({"ChecksumCRC64NVME": crc64nvme_b64(b"other")}, {"ChecksumSHA1": sha1}):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="bad", Body=body[:-1], **wrong)
        assert error_code(e) == "BadDigest" and status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="bad")
    assert status(e) == 404


def test_conditional_writes(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"two", IfNoneMatch="*")
    assert error_code(e) == "PreconditionFailed" and status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"one"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"two", IfMatch='"' + "0" * 32 + '"')
    assert status(e) == 412
    second = s3.put_object(Bucket=bucket, Key="once", Body=b"two", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="once")["ETag"] == second["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="never", Body=b"x", IfMatch=first["ETag"])
    assert error_code(e) == "NoSuchKey" and status(e) == 404


def test_racing_creates_with_if_none_match_have_one_winner(node, bucket):
    from concurrent.futures import ThreadPoolExecutor

    def attempt(i):
        client = node.client()
        try:
            client.put_object(Bucket=bucket, Key="race", Body=f"writer {i}".encode(), IfNoneMatch="*")
            return i
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 412
            return None

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(attempt, range(8)) if w is not None]
    assert len(winners) == 1
    body = node.client().get_object(Bucket=bucket, Key="race")["Body"].read()
    assert body == f"writer {winners[0]}".encode()


def test_unsupported_subresources_never_touch_the_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"precious")
    attempts = [
        lambda: s3.get_bucket_notification_configuration(Bucket=bucket),
        lambda: s3.restore_object(Bucket=bucket, Key="keep", RestoreRequest={"Days": 1}),
        lambda: s3.get_bucket_website(Bucket=bucket),
        lambda: s3.get_bucket_logging(Bucket=bucket),
        lambda: s3.get_bucket_request_payment(Bucket=bucket),
    ]
    for attempt in attempts:
        with pytest.raises(ClientError) as e:
            attempt()
        assert error_code(e) == "NotImplemented" and status(e) == 501
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"precious"


def test_acls_read_as_owner_full_control(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="k")):
        assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
        assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    with pytest.raises(ClientError) as e:
        s3.get_object_acl(Bucket=bucket, Key="missing")
    assert error_code(e) == "NoSuchKey"
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None
