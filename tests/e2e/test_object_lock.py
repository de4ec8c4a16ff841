"""Object Lock through boto3 and restic: lock-enabled buckets, default
retention, per-version retention and legal holds, who may bypass
governance, and the errors S3 answers."""

import datetime
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, require_tool
from rawhttp import send, signed_headers

_counter = [0]


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def locked_bucket(s3, default=None):
    """A new bucket made with Object Lock (and so versioning) enabled."""
    _counter[0] += 1
    name = f"locked-{os.getpid()}-{_counter[0]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if default:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": default}})
    return name


def ahead(**delta):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta)


def test_a_lock_bucket_is_versioned_and_stays_so(s3, bucket):
    name = locked_bucket(s3)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert error_of(e) == ("InvalidBucketState", 409)
    # A bucket without it: no configuration, and none until versioned.
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert error_of(e) == ("ObjectLockConfigurationNotFoundError", 404)
    lock = {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as e:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
    assert error_of(e) == ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == lock
    # Lock settings on a bucket without Object Lock are refused.
    plain = locked_bucket(s3).replace("locked", "plain")
    s3.create_bucket(Bucket=plain)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=plain, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert error_of(e) == ("InvalidRequest", 400)


def test_a_retained_version_survives_its_writer(s3):
    name = locked_bucket(s3)
    until = ahead(days=1)
    put = s3.put_object(Bucket=name, Key="backup", Body=b"precious", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until)
    head = s3.head_object(Bucket=name, Key="backup")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - until).total_seconds()) < 1
    # A DELETE without a version id only writes a delete marker.
    s3.delete_object(Bucket=name, Key="backup")
    for bypass in (False, True):
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=name, Key="backup", VersionId=put["VersionId"],
                             BypassGovernanceRetention=bypass)
        assert error_of(e) == ("AccessDenied", 403)
    got = s3.get_object(Bucket=name, Key="backup", VersionId=put["VersionId"])
    assert got["Body"].read() == b"precious"
    # Compliance retention may only grow.
    version = dict(Bucket=name, Key="backup", VersionId=put["VersionId"])
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(**version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": ahead(hours=1)},
                                BypassGovernanceRetention=True)
    assert error_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(**version, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": ahead(days=9)})
    assert error_of(e) == ("AccessDenied", 403)
    longer = ahead(days=2)
    s3.put_object_retention(**version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    retention = s3.get_object_retention(**version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert abs((retention["RetainUntilDate"] - longer).total_seconds()) < 1


def test_governance_yields_only_to_a_bypass_by_the_owner(s3):
    name = locked_bucket(s3)
    put = s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=ahead(days=1))
    version = dict(Bucket=name, Key="k", VersionId=put["VersionId"])
    with pytest.raises(ClientError) as e:
        s3.delete_object(**version)
    assert error_of(e) == ("AccessDenied", 403)
    # Shortening needs the bypass too, and so does turning it into
    # compliance (even for longer).
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(**version, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": ahead(hours=1)})
    assert error_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(**version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": ahead(days=2)})
    assert error_of(e) == ("AccessDenied", 403)
    assert s3.get_object_retention(**version)["Retention"]["Mode"] == "GOVERNANCE"
    s3.put_object_retention(**version, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": ahead(hours=1)},
                            BypassGovernanceRetention=True)
    s3.delete_object(**version, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as e:
        s3.head_object(**version)
    assert error_of(e)[1] == 404


def test_a_legal_hold_keeps_a_version_until_released(s3):
    name = locked_bucket(s3)
    put = s3.put_object(Bucket=name, Key="k", Body=b"x")
    version = dict(Bucket=name, Key="k", VersionId=put["VersionId"])
    with pytest.raises(ClientError) as e:
        s3.get_object_retention(**version)
    assert error_of(e) == ("NoSuchObjectLockConfiguration", 404)
    assert s3.get_object_legal_hold(**version)["LegalHold"]["Status"] == "OFF"
    s3.put_object_legal_hold(**version, LegalHold={"Status": "ON"})
    assert s3.head_object(**version)["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as e:
        s3.delete_object(**version, BypassGovernanceRetention=True)
    assert error_of(e) == ("AccessDenied", 403)
    s3.put_object_legal_hold(**version, LegalHold={"Status": "OFF"})
    s3.delete_object(**version)


def test_default_retention_counts_from_the_write(s3):
    name = locked_bucket(s3, default={"Mode": "GOVERNANCE", "Days": 1})
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    before = ahead(days=1)
    put = s3.put_object(Bucket=name, Key="k", Body=b"x")
    head = s3.head_object(Bucket=name, Key="k", VersionId=put["VersionId"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert 0 <= (head["ObjectLockRetainUntilDate"] - before).total_seconds() < 5
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=name, Key="k", VersionId=put["VersionId"])
    assert error_of(e) == ("AccessDenied", 403)
    # Multipart uploads and copies get it too, or what they ask for.
    upload = s3.create_multipart_upload(Bucket=name, Key="mpu", ObjectLockMode="COMPLIANCE",
                                        ObjectLockRetainUntilDate=ahead(days=3))["UploadId"]
    etag = s3.upload_part(Bucket=name, Key="mpu", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    done = s3.complete_multipart_upload(Bucket=name, Key="mpu", UploadId=upload,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.head_object(Bucket=name, Key="mpu", VersionId=done["VersionId"])["ObjectLockMode"] == "COMPLIANCE"
    copied = s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "mpu"})
    assert s3.head_object(Bucket=name, Key="copy", VersionId=copied["VersionId"])["ObjectLockMode"] == "GOVERNANCE"


def test_lock_requests_need_an_integrity_header_and_valid_values(node, s3):
    name = locked_bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    path = f"/{name}/k?retention"
    body = (b"<Retention><Mode>GOVERNANCE</Mode>"
            b"<RetainUntilDate>2999-01-01T00:00:00Z</RetainUntilDate></Retention>")
    status, _, answer = send(node, "PUT", path, signed_headers(node, "PUT", path, {}), body)
    assert status == 400 and b"InvalidRequest" in answer, answer
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(Bucket=name, Key="k", Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": ahead(days=-1)})
    assert error_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE")
    assert error_of(e) == ("InvalidArgument", 400)


def test_restic_backs_up_to_a_lock_bucket_and_restores(node, s3, tmp_path):
    restic = require_tool("restic", "restic")
    name = locked_bucket(s3, default={"Mode": "GOVERNANCE", "Days": 1})
    source = tmp_path / "source"
    (source / "nested").mkdir(parents=True)
    files = {"a.txt": b"hello restic\n", "nested/b.bin": os.urandom(3 << 20), "empty": b""}
    for path, data in files.items():
        (source / path).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               RESTIC_PASSWORD="correct horse", RESTIC_REPOSITORY=f"s3:{node.endpoint}/{name}",
               RESTIC_CACHE_DIR=str(tmp_path / "cache"))

    def run(*args):
        done = subprocess.run([restic, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"restic {args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    run("init")
    run("backup", str(source))
    run("check", "--read-data")
    target = tmp_path / "restored"
    run("restore", "latest", "--target", str(target))
    for path, data in files.items():
        assert (target / source.relative_to("/") / path).read_bytes() == data
    # restic removed its lock files; their versions are still there.
    page = s3.list_object_versions(Bucket=name, Prefix="locks/")
    assert page.get("DeleteMarkers") and page.get("Versions")
    for version in page["Versions"]:
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
        assert error_of(e) == ("AccessDenied", 403)
