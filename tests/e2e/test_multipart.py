"""Multipart uploads through boto3: the whole API, its error codes, the
transfer manager with default settings on a 1 GiB file, and the reaper."""

import base64
import hashlib
import os
import time
import zlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MIB = 1 << 20
PART = 5 * MIB


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def status(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def multipart_etag(parts):
    """S3's multipart ETag: MD5 of the parts' raw MD5s, then `-N`."""
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def upload(s3, bucket, key, parts, **create_args):
    """Uploads `parts` (bytes each) as parts 1..N and completes."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_args)
    done = []
    for number, body in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=number, Body=body)
        done.append({"PartNumber": number, "ETag": r["ETag"]})
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )


def test_upload_complete_get(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART + 17), b"tail" * 1000]
    up = s3.create_multipart_upload(
        Bucket=bucket, Key="obj", ContentType="text/plain", Metadata={"color": "blue"},
        CacheControl="max-age=60",
    )
    done = []
    for number, body in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key="obj", UploadId=up["UploadId"], PartNumber=number, Body=body)
        assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        done.append({"PartNumber": number, "ETag": r["ETag"]})
    # Not visible before completion.
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="obj")
    assert status(e) == 404
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="obj", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    assert result["ETag"] == multipart_etag(parts)
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == multipart_etag(parts)
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "max-age=60"
    # Ranges across part boundaries.
    whole = b"".join(parts)
    ranged = s3.get_object(Bucket=bucket, Key="obj", Range=f"bytes={PART - 10}-{PART + 10}")
    assert ranged["Body"].read() == whole[PART - 10 : PART + 11]
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("obj", len(whole), multipart_etag(parts))]
    # The upload is gone once completed.
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="obj", UploadId=up["UploadId"])
    assert error_code(e) == "NoSuchUpload" and status(e) == 404


def test_get_and_head_by_part_number(s3, bucket):
    # Parts numbered with a gap, as a client may complete them: each is
    # served by its own number, as a range of the object.
    bodies = {1: os.urandom(PART), 3: os.urandom(PART + 17), 4: b"tail" * 1000}
    up = s3.create_multipart_upload(Bucket=bucket, Key="parts")
    done = []
    for number, body in bodies.items():
        r = s3.upload_part(Bucket=bucket, Key="parts", UploadId=up["UploadId"], PartNumber=number, Body=body)
        done.append({"PartNumber": number, "ETag": r["ETag"]})
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert error_code(e) == "NoSuchKey", "not before completion"
    etag = s3.complete_multipart_upload(
        Bucket=bucket, Key="parts", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )["ETag"]
    whole = b"".join(bodies.values())
    first = 0
    for number, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key="parts", PartNumber=number)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["Body"].read() == body
        assert got["PartsCount"] == 3 and got["ETag"] == etag
        assert got["ContentRange"] == f"bytes {first}-{first + len(body) - 1}/{len(whole)}"
        head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=number)
        assert head["ContentLength"] == len(body) and head["PartsCount"] == 3
        first += len(body)
    for missing in (2, 5):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="parts", PartNumber=missing)
        assert error_code(e) == "InvalidPart" and status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=1, Range="bytes=0-9")
    assert error_code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="parts", PartNumber=10001)
    assert error_code(e) == "InvalidArgument"
    # A copy keeps the parts; an object written by one PUT is its own part 1.
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "parts"})
    assert s3.get_object(Bucket=bucket, Key="copied", PartNumber=3)["Body"].read() == bodies[3]
    s3.put_object(Bucket=bucket, Key="single", Body=b"one body")
    got = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert got["Body"].read() == b"one body" and "PartsCount" not in got
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="single", PartNumber=2)
    assert status(e) == 400


def test_part_reupload_replaces_and_list_parts_pages(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")
    uid = up["UploadId"]
    for number in range(1, 6):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=number, Body=b"x" * number)
    again = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=3, Body=b"new")
    first = s3.list_parts(Bucket=bucket, Key="k", UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] is True
    rest = s3.list_parts(
        Bucket=bucket, Key="k", UploadId=uid, PartNumberMarker=first["NextPartNumberMarker"]
    )
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 3), (4, 4), (5, 5)]
    assert rest["Parts"][0]["ETag"] == again["ETag"]
    assert rest["IsTruncated"] is False
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)


def test_complete_errors(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")
    uid = up["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"small")
    big = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=2, Body=b"b" * PART)

    def complete(parts):
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=uid, MultipartUpload={"Parts": parts}
        )

    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 2, "ETag": big["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}])
    assert error_code(e) == "InvalidPartOrder" and status(e) == 400
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 1, "ETag": big["ETag"]}])
    assert error_code(e) == "InvalidPart" and status(e) == 400
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 7, "ETag": big["ETag"]}])
    assert error_code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": big["ETag"]}])
    assert error_code(e) == "EntityTooSmall" and status(e) == 400
    # Every failure above left the upload intact: a valid choice completes.
    done = complete([{"PartNumber": 2, "ETag": big["ETag"]}])
    assert done["ETag"] == multipart_etag([b"b" * PART])
    for bad_part in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=bad_part, Body=b"x")
        assert error_code(e) == "InvalidArgument"


def test_unknown_and_aborted_uploads(s3, bucket):
    for uid in ("nonsense", "0" * 32):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"x")
        assert error_code(e) == "NoSuchUpload" and status(e) == 404
        with pytest.raises(ClientError) as e:
            s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)
        assert error_code(e) == "NoSuchUpload"
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")
    s3.upload_part(Bucket=bucket, Key="k", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    # An upload id belongs to its key.
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="other", UploadId=up["UploadId"])
    assert error_code(e) == "NoSuchUpload"
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=up["UploadId"])
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=up["UploadId"], PartNumber=2, Body=b"x")
    assert error_code(e) == "NoSuchUpload"
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket="no-such-bucket-here", Key="k")
    assert error_code(e) == "NoSuchBucket"


def test_list_multipart_uploads(s3, bucket):
    ids = {}
    for key in ["a/1", "a/2", "b", "c/x/y", "b"]:
        ids.setdefault(key, []).append(s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    every = s3.list_multipart_uploads(Bucket=bucket)
    listed = [(u["Key"], u["UploadId"]) for u in every["Uploads"]]
    expected = sorted((k, i) for k, v in ids.items() for i in v)
    assert listed == expected
    assert every["IsTruncated"] is False
    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in grouped["Uploads"]] == ["b", "b"]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "c/"]
    only_a = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in only_a["Uploads"]] == ["a/1", "a/2"]
    # Paging with key and upload-id markers walks everything once.
    seen, args = [], {}
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, **args)
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        args = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    assert seen == expected


def test_upload_part_copy_with_ranges(s3, bucket):
    source = os.urandom(3 * MIB + 5)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")
    uid = up["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
    )
    middle = source[MIB - 3 : 2 * MIB + 9]
    second = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=uid, PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes={MIB - 3}-{2 * MIB + 8}",
    )
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
    assert second["CopyPartResult"]["ETag"] == f'"{hashlib.md5(middle).hexdigest()}"'
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=uid, PartNumber=3,
            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{len(source)}",
        )
    assert status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=uid, PartNumber=3,
            CopySource={"Bucket": bucket, "Key": "missing"},
        )
    assert error_code(e) == "NoSuchKey"
    # Part 1 (the 3 MiB source) is under 5 MiB and not last: refused.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="dst", UploadId=uid,
            MultipartUpload={"Parts": [
                {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
            ]},
        )
    assert error_code(e) == "EntityTooSmall"
    s3.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == middle


def crc32_raw(data):
    return zlib.crc32(data).to_bytes(4, "big")


def test_composite_crc32_checksum(s3, bucket):
    parts = [os.urandom(PART), b"end" * 100]
    up = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm="CRC32")
    uid = up["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        r = s3.upload_part(
            Bucket=bucket, Key="ck", UploadId=uid, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32"
        )
        assert r["ChecksumCRC32"] == base64.b64encode(crc32_raw(body)).decode()
        done.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="ck", UploadId=uid)
    assert [p["ChecksumCRC32"] for p in listed["Parts"]] == [d["ChecksumCRC32"] for d in done]
    bad = [dict(done[0], ChecksumCRC32="AAAAAA=="), done[1]]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=uid, MultipartUpload={"Parts": bad})
    assert error_code(e) == "InvalidPart"
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="ck", UploadId=uid, MultipartUpload={"Parts": done}
    )
    composite = base64.b64encode(crc32_raw(b"".join(crc32_raw(p) for p in parts))).decode() + "-2"
    assert result["ChecksumCRC32"] == composite
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == composite
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "COMPOSITE"


def test_full_object_crc32_checksum(s3, bucket):
    parts = [os.urandom(PART), os.urandom(1000)]
    whole = b"".join(parts)
    up = s3.create_multipart_upload(
        Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    done = []
    for number, body in enumerate(parts, start=1):
        r = s3.upload_part(
            Bucket=bucket, Key="full", UploadId=up["UploadId"], PartNumber=number, Body=body,
            ChecksumAlgorithm="CRC32",
        )
        done.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    expected = base64.b64encode(crc32_raw(whole)).decode()
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=up["UploadId"], MultipartUpload={"Parts": done},
        ChecksumCRC32=expected, ChecksumType="FULL_OBJECT",
    )
    assert result["ChecksumCRC32"] == expected
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "FULL_OBJECT"
    # CRC64NVME only exists as a full-object checksum.
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE"
        )
    assert status(e) == 400


def test_conditional_complete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="exists", Body=b"old")
    up = s3.create_multipart_upload(Bucket=bucket, Key="exists")
    part = s3.upload_part(Bucket=bucket, Key="exists", UploadId=up["UploadId"], PartNumber=1, Body=b"new")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="exists", UploadId=up["UploadId"], IfNoneMatch="*",
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
    assert status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"old"


def test_upload_and_download_file_1gib_default_transfer(s3, bucket, tmp_path):
    """boto3's transfer manager with its defaults: 8 MiB parts, 10 threads,
    CRC32 part checksums; download by concurrent ranges."""
    size = 1 << 30
    src = tmp_path / "one-gib.bin"
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(size // MIB):
            chunk = i.to_bytes(4, "big") + block[4:]
            f.write(chunk)
            digest.update(chunk)
    s3.upload_file(str(src), bucket, "one-gib")
    head = s3.head_object(Bucket=bucket, Key="one-gib")
    assert head["ContentLength"] == size
    assert head["ETag"].endswith('-128"')  # 8 MiB parts
    src.unlink()
    dst = tmp_path / "one-gib.out"
    s3.download_file(bucket, "one-gib", str(dst))
    read = hashlib.sha256()
    with open(dst, "rb") as f:
        while piece := f.read(8 * MIB):
            read.update(piece)
    assert read.hexdigest() == digest.hexdigest()


def test_transfer_manager_small_parts(s3, bucket, tmp_path):
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    data = os.urandom(23 * MIB + 7)
    src = tmp_path / "f"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "f", Config=config)
    dst = tmp_path / "g"
    s3.download_file(bucket, "f", str(dst), Config=config)
    assert dst.read_bytes() == data


def test_incomplete_uploads_are_reaped(fresh_node):
    node = fresh_node(extra_args=["--multipart-expiry", "1s"])
    s3 = node.client()
    s3.create_bucket(Bucket="reaped")
    up = s3.create_multipart_upload(Bucket="reaped", Key="k")
    s3.upload_part(Bucket="reaped", Key="k", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    deadline = time.monotonic() + 20
    while "Uploads" in s3.list_multipart_uploads(Bucket="reaped"):
        assert time.monotonic() < deadline, "upload not reaped"
        time.sleep(0.2)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="reaped", Key="k", UploadId=up["UploadId"], PartNumber=2, Body=b"x")
    assert error_code(e) == "NoSuchUpload"
