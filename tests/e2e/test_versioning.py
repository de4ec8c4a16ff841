"""Bucket versioning through boto3: versions, delete markers, the null
version, listing versions, copies and multipart uploads of versions, and
the errors S3 answers."""

import json
import os
import urllib.request

import pytest
from botocore.exceptions import ClientError

MIB = 1 << 20


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def versioned(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    return bucket


def all_versions(s3, bucket, **kwargs):
    """Every version and delete marker, following the listing's markers."""
    versions, markers, prefixes = [], [], []
    args = dict(Bucket=bucket, **kwargs)
    while True:
        page = s3.list_object_versions(**args)
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            return versions, markers, prefixes
        args["KeyMarker"] = page["NextKeyMarker"]
        if "NextVersionIdMarker" in page:
            args["VersionIdMarker"] = page["NextVersionIdMarker"]
        else:
            args.pop("VersionIdMarker", None)


def test_versioning_status_goes_enabled_and_suspended(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    versioned(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    versioned(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Sometimes"})
    assert error_of(e) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    assert error_of(e)[1] == 501


def test_every_write_keeps_a_version(s3, bucket):
    versioned(s3, bucket)
    bodies = [b"first", os.urandom(2 * MIB + 5), b"third"]
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=body)["VersionId"] for body in bodies]
    assert len(set(ids)) == 3 and ids == sorted(ids), "ids are unique and time-ordered"
    for version_id, body in zip(ids, bodies):
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=version_id)
        assert got["Body"].read() == body
        assert got["VersionId"] == version_id
        head = s3.head_object(Bucket=bucket, Key="k", VersionId=version_id)
        assert head["ContentLength"] == len(body)
    latest = s3.get_object(Bucket=bucket, Key="k")
    assert latest["Body"].read() == b"third" and latest["VersionId"] == ids[2]
    versions, markers, _ = all_versions(s3, bucket)
    assert [v["VersionId"] for v in versions] == ids[::-1]
    assert [v["IsLatest"] for v in versions] == [True, False, False]
    assert [v["Size"] for v in versions] == [5, 2 * MIB + 5, 5]
    assert markers == []
    # Current objects list once, however many versions they have.
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", 5)]


def test_a_delete_writes_a_marker_and_removing_it_restores(s3, bucket):
    versioned(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="doc", Body=b"keep me")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="doc")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker > kept
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="doc")
    assert error_of(e) == ("NoSuchKey", 404)
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker
    # The marker by its id is no object to read.
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert error_of(e)[1] == 405
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=kept)["Body"].read() == b"keep me"
    versions, markers, _ = all_versions(s3, bucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(kept, False)]
    # Removing the marker brings the object back.
    removed = s3.delete_object(Bucket=bucket, Key="doc", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    got = s3.get_object(Bucket=bucket, Key="doc")
    assert got["Body"].read() == b"keep me" and got["VersionId"] == kept


def test_deleting_the_current_version_makes_the_previous_current(s3, bucket):
    versioned(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"new")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=new)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"old" and got["VersionId"] == old
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=new)
    assert error_of(e) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=old)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(e) == ("NoSuchKey", 404)
    assert all_versions(s3, bucket) == ([], [], [])
    # With no versions left the bucket is empty and can go.
    s3.delete_bucket(Bucket=bucket)


def test_suspended_writes_replace_the_null_version_and_keep_the_others(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before versioning")
    versioned(s3, bucket)
    # An object from before versioning is the null version.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before versioning"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before versioning"
    versioned(s3, bucket, "Suspended")
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"suspended 2")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"suspended 2" and got["VersionId"] == "null"
    versions, _, _ = all_versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (v1, False)]
    # A suspended delete writes a null delete marker, replacing the null version.
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    versions, markers, _ = all_versions(s3, bucket)
    assert [v["VersionId"] for v in versions] == [v1]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", True)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"v1"


def test_a_bucket_with_versions_is_not_empty(s3, bucket):
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(e) == ("BucketNotEmpty", 409)


def test_copy_and_multipart_make_versions(s3, bucket):
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="src", Body=b"original")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"changed")
    copied = s3.copy_object(Bucket=bucket, Key="dst",
                            CopySource={"Bucket": bucket, "Key": "src", "VersionId": first})
    assert copied["CopySourceVersionId"] == first
    assert copied["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"original"
    # Copying an old version over its own key restores it as the newest.
    restored = s3.copy_object(Bucket=bucket, Key="src",
                              CopySource={"Bucket": bucket, "Key": "src", "VersionId": first})
    assert s3.get_object(Bucket=bucket, Key="src")["VersionId"] == restored["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"original"

    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    parts = []
    for n in (1, 2):
        body = os.urandom(5 * MIB if n == 1 else 1000)
        etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    assert done["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="big", VersionId=done["VersionId"])
    assert head["ContentLength"] == 5 * MIB + 1000


def test_delete_objects_by_version_and_with_markers(s3, bucket):
    versioned(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"a2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": a2},
        {"Key": "b"},
        {"Key": "c", "VersionId": "not-a-version"},
    ]})
    deleted = {d["Key"]: d for d in result["Deleted"]}
    assert deleted["a"]["VersionId"] == a2
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("c", "InvalidArgument")]
    assert s3.get_object(Bucket=bucket, Key="a")["VersionId"] == a1


def test_listing_versions_pages_by_key_and_version(s3, bucket):
    versioned(s3, bucket)
    expected = []
    for key in ["a", "d/x", "d/y", "z"]:
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{i}".encode())["VersionId"]
               for i in range(3)]
        expected += [(key, version_id) for version_id in reversed(ids)]
    for page_size in (1, 2, 5, 1000):
        versions, _, _ = all_versions(s3, bucket, MaxKeys=page_size)
        assert [(v["Key"], v["VersionId"]) for v in versions] == expected, page_size
    versions, _, prefixes = all_versions(s3, bucket, Delimiter="/", MaxKeys=2)
    assert prefixes == ["d/"]
    assert [v["Key"] for v in versions] == ["a"] * 3 + ["z"] * 3
    versions, _, _ = all_versions(s3, bucket, Prefix="d/")
    assert [v["Key"] for v in versions] == ["d/x"] * 3 + ["d/y"] * 3
    # Starting after one version of a key, then after all of a key.
    page = s3.list_object_versions(Bucket=bucket, KeyMarker="d/x", VersionIdMarker=expected[3][1])
    assert [(v["Key"], v["VersionId"]) for v in page["Versions"]] == expected[4:]
    assert all(not v["IsLatest"] for v in page["Versions"][:2])
    page = s3.list_object_versions(Bucket=bucket, KeyMarker="d/x")
    assert [(v["Key"], v["VersionId"]) for v in page["Versions"]] == expected[6:]


def test_versions_have_their_own_acls(node, s3, bucket):
    versioned(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    s3.put_object_acl(Bucket=bucket, Key="k", VersionId=old, ACL="public-read")
    old_grants = s3.get_object_acl(Bucket=bucket, Key="k", VersionId=old)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in old_grants)
    current = s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in current)


def test_version_errors(s3, bucket):
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert error_of(e) == ("InvalidArgument", 400)
    missing = "0" * 12 + "00000000000000ff" + "00000000"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=missing)
    assert error_of(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=missing)
    assert error_of(e) == ("InvalidArgument", 400)
    # Deleting a version that is not there succeeds, as S3's DELETE does.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=missing)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_versions_survive_kill_9(fresh_node):
    node = fresh_node()
    s3 = node.client()
    s3.create_bucket(Bucket="survives")
    versioned(s3, "survives")
    ids = [s3.put_object(Bucket="survives", Key="k", Body=f"v{i}".encode())["VersionId"] for i in range(3)]
    marker = s3.delete_object(Bucket="survives", Key="k")["VersionId"]
    node.kill9()
    node.start()
    s3 = node.client()
    assert s3.get_bucket_versioning(Bucket="survives")["Status"] == "Enabled"
    versions, markers, _ = all_versions(s3, "survives")
    assert [v["VersionId"] for v in versions] == ids[::-1]
    assert [m["VersionId"] for m in markers] == [marker]
    assert s3.get_object(Bucket="survives", Key="k", VersionId=ids[0])["Body"].read() == b"v0"


def test_force_deleting_a_bucket_deletes_every_version(node, s3, bucket):
    from conftest import ctl
    versioned(s3, bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="k", Body=f"{i}".encode())
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    # The admin endpoint takes names percent-encoded in full, as some URL
    # libraries write them.
    encoded = "".join(c if c.isalnum() else "%{:02X}".format(ord(c)) for c in bucket)
    with urllib.request.urlopen(f"{node.admin}/admin/buckets/{encoded}", timeout=5) as answer:
        assert json.loads(answer.read())["name"] == bucket
    forced = json.loads(ctl(node, "bucket", "delete", bucket, "--force").stdout)
    # Three versions and a marker of k, one version of other.
    assert forced == {"deleted": bucket, "objects_deleted": 5, "uploads_aborted": 0}
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
