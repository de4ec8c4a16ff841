"""Corners of S3 that real clients reach: copy-source conditions,
conditional writes and deletes (ETag, last-modified time, size), response
header overrides, `If-Match: *` on PUT, a client's composite checksum on
Complete, and bucket names S3 reserves."""

import base64
import os
import zlib

import pytest
import requests
from botocore.exceptions import ClientError

from test_objects import error_code, status


def test_copy_source_conditions_refuse_the_copy(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"source")["ETag"]
    source = {"Bucket": bucket, "Key": "src"}
    refused = [
        {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfUnmodifiedSince": "Mon, 01 Jan 2001 00:00:00 GMT"},
        {"CopySourceIfModifiedSince": "Mon, 01 Jan 2100 00:00:00 GMT"},
    ]
    for condition in refused:
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, **condition)
        assert status(e) == 412, condition
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="dst")
    assert status(e) == 404, "nothing was copied"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source"
    # UploadPartCopy keeps them too.
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1,
                            CopySource=source, CopySourceIfNoneMatch=etag)
    assert status(e) == 412


def test_conditional_deletes_remove_only_the_version_they_describe(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"keep me")["ETag"]
    head = s3.head_object(Bucket=bucket, Key="k")
    for refused in [{"IfMatch": '"' + "0" * 32 + '"'}, {"IfMatch": "not-an-etag"},
                    {"IfMatchSize": 8}, {"IfMatchLastModifiedTime": "2001-01-01T00:00:00Z"}]:
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=bucket, Key="k", **refused)
        assert (status(e), error_code(e)) == (412, "PreconditionFailed"), refused
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep me"
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag, IfMatchSize=7,
                     IfMatchLastModifiedTime=head["LastModified"])
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert status(e) == 404
    # Nothing there: nothing to delete, and no error.
    assert s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)["ResponseMetadata"][
        "HTTPStatusCode"] == 204

    # DeleteObjects: each entry judged on its own.
    kept = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    gone = s3.put_object(Bucket=bucket, Key="b", Body=b"b")["ETag"]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": gone}, {"Key": "b", "ETag": gone, "Size": 1}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["b"]
    assert [(x["Key"], x["Code"]) for x in answer["Errors"]] == [("a", "PreconditionFailed")]
    assert s3.head_object(Bucket=bucket, Key="a")["ETag"] == kept


def test_if_none_match_with_an_etag_writes_over_any_other_version(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch=first)
    assert (status(e), error_code(e)) == (412, "PreconditionFailed")
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch='"' + "0" * 32 + '"')
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"
    # An ETag that does not parse matches no object: If-Match on a missing
    # key is 404, on a present one 412.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch="garbage")
    assert status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch="garbage")
    assert status(e) == 412
    s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch=second["ETag"])


def test_response_header_overrides_on_signed_gets(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"%PDF", ContentType="application/octet-stream")
    got = s3.get_object(Bucket=bucket, Key="doc", ResponseContentType="application/pdf",
                        ResponseContentDisposition='attachment; filename="a.pdf"',
                        ResponseCacheControl="no-cache")
    assert got["ContentType"] == "application/pdf"
    assert got["ContentDisposition"] == 'attachment; filename="a.pdf"'
    assert got["CacheControl"] == "no-cache"
    assert s3.get_object(Bucket=bucket, Key="doc")["ContentType"] == "application/octet-stream"
    s3.put_object_acl(Bucket=bucket, Key="doc", ACL="public-read")
    r = requests.get(f"{node.endpoint}/{bucket}/doc?response-content-type=text/html", timeout=10)
    assert r.status_code == 400, "anonymous requests may not override"


def test_if_match_star_writes_only_over_an_existing_key(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"1", IfMatch="*")
    assert error_code(e) == "NoSuchKey" and status(e) == 404
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"


def test_a_clients_composite_checksum_on_complete(s3, bucket):
    parts = [os.urandom(5 << 20), b"tail"]
    raw = [zlib.crc32(p).to_bytes(4, "big") for p in parts]
    composite = base64.b64encode(zlib.crc32(b"".join(raw)).to_bytes(4, "big")).decode()
    for sent, ok in [(composite + "-2", True), (composite, True), (composite + "-3", False)]:
        up = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm="CRC32")
        done = []
        for number, body in enumerate(parts, start=1):
            r = s3.upload_part(Bucket=bucket, Key="ck", UploadId=up["UploadId"], PartNumber=number,
                               Body=body, ChecksumAlgorithm="CRC32")
            done.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
        complete = lambda: s3.complete_multipart_upload(  # noqa: E731
            Bucket=bucket, Key="ck", UploadId=up["UploadId"], MultipartUpload={"Parts": done},
            ChecksumCRC32=sent)
        if ok:
            assert complete()["ChecksumCRC32"] == composite + "-2"
        else:
            with pytest.raises(ClientError) as e:
                complete()
            assert error_code(e) == "BadDigest"


def test_bucket_names_s3_reserves_are_refused(s3):
    for name in ("foo.-bar", "foo-.bar", "xn--bucket", "data-s3alias", "logs--ol-s3"):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=name)
        assert error_code(e) == "InvalidBucketName", name


def test_object_attributes_without_the_body(s3, bucket):
    wanted = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    put = s3.put_object(Bucket=bucket, Key="one", Body=b"x" * 1000, ChecksumAlgorithm="CRC32")
    got = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=wanted)
    assert got["ETag"] == put["ETag"].strip('"')
    assert got["ObjectSize"] == 1000 and got["StorageClass"] == "STANDARD"
    assert got["Checksum"]["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ObjectParts" not in got

    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts", ChecksumAlgorithm="SHA256")
    sizes = [5 << 20, 5 << 20, 123]
    parts = []
    for number, size in enumerate(sizes, start=1):
        part = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload["UploadId"],
                              PartNumber=number, Body=os.urandom(size), ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": number, "ETag": part["ETag"],
                      "ChecksumSHA256": part["ChecksumSHA256"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
    page = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=wanted,
                                    MaxParts=1, PartNumberMarker=1)
    assert page["ETag"] == done["ETag"].strip('"')
    assert page["Checksum"]["ChecksumSHA256"] == done["ChecksumSHA256"]
    listed = page["ObjectParts"]
    assert listed["TotalPartsCount"] == 3 and listed["IsTruncated"] is True
    assert listed["NextPartNumberMarker"] == 2
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in listed["Parts"]] == [
        (2, 5 << 20, parts[1]["ChecksumSHA256"])]

    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=wanted)
    assert status(e) == 404


def test_a_put_of_unknown_length_streams_in(node, s3, bucket):
    # A generator body: requests sends it with Transfer-Encoding: chunked
    # and no Content-Length, as `curl -T -` and streaming SDK uploads do.
    url = node.client(signature_version="s3v4").generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "streamed"},
                                    ExpiresIn=60)
    pieces = [os.urandom(300_000) for _ in range(8)]
    answer = requests.put(url, data=iter(pieces), timeout=30)
    assert answer.status_code == 200, answer.text
    got = s3.get_object(Bucket=bucket, Key="streamed")
    assert got["ContentLength"] == 2_400_000 and got["Body"].read() == b"".join(pieces)
    answer = requests.put(url, data=iter([b"ab", b"c"]), timeout=30)
    assert answer.status_code == 200
    assert s3.get_object(Bucket=bucket, Key="streamed")["Body"].read() == b"abc"
