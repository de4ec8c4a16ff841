"""Lifecycle rules through boto3, on a node whose lifecycle day lasts two
seconds (the hidden `--lifecycle-day` test clock) and whose worker looks
every 300 ms: expirations of current and noncurrent versions, lone delete
markers and incomplete uploads, filters, Object Lock, and rules changed
after objects were written."""

import datetime
import time

import pytest
from botocore.exceptions import ClientError

from conftest import metric_sum, wait_until

DAY_S = 2


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    from conftest import Node
    node = Node(tmp_path_factory.mktemp("lifecycle") / "data",
                extra_args=["--lifecycle-day", f"{DAY_S}s", "--lifecycle-interval", "300ms"]).start()
    yield node
    node.stop()


_counter = [0]


@pytest.fixture
def s3(fast):
    return fast.client()


def new_bucket(s3, versioned=False, lock=False):
    _counter[0] += 1
    name = f"lifecycle-{_counter[0]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def rules(s3, bucket, *rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def versions(s3, bucket):
    page = s3.list_object_versions(Bucket=bucket)
    return ([(v["Key"], v["VersionId"]) for v in page.get("Versions", [])],
            [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])])


def test_configurations_round_trip_and_refuse_what_s3_refuses(s3):
    bucket = new_bucket(s3)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    rule = {"ID": "logs", "Status": "Enabled",
            "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "t", "Value": "v"}]}},
            "Expiration": {"Days": 30},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}}
    rules(s3, bucket, rule)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [rule]
    with pytest.raises(ClientError) as e:
        rules(s3, bucket, {"ID": "t", "Status": "Enabled", "Filter": {"Prefix": ""},
                           "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    with pytest.raises(ClientError) as e:
        rules(s3, bucket, {"ID": "none", "Status": "Enabled", "Filter": {"Prefix": ""}})
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def test_current_objects_expire_under_their_rule_only(fast, s3):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="logs/a", Body=b"x")
    s3.put_object(Bucket=bucket, Key="logs/tagged", Body=b"x", Tagging="keep=no")
    s3.put_object(Bucket=bucket, Key="data/b", Body=b"x")
    before = metric_sum(fast, "shoal_lifecycle_expired_current_total")
    # Rules set after the objects were written apply to them.
    rules(s3, bucket,
          {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/a"}, "Expiration": {"Days": 1}},
          {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "keep", "Value": "no"}},
           "Expiration": {"Days": 1}},
          {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "data/"}, "Expiration": {"Days": 1}})
    wait_until(lambda: keys(s3, bucket) == ["data/b"], 10 * DAY_S, "logs/ to expire")
    assert metric_sum(fast, "shoal_lifecycle_expired_current_total") - before == 2
    time.sleep(DAY_S)
    assert keys(s3, bucket) == ["data/b"], "a disabled rule expires nothing"


def test_noncurrent_versions_and_lone_markers_expire(s3):
    bucket = new_bucket(s3, versioned=True)
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=f"{i}".encode())["VersionId"] for i in range(4)]
    rules(s3, bucket, {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}})
    # The current version and the newest noncurrent one stay.
    wait_until(lambda: versions(s3, bucket)[0] == [("k", ids[3]), ("k", ids[2])], 10 * DAY_S,
               "older noncurrent versions to expire")
    # Expiring the current version leaves a delete marker; the rest goes,
    # and then the marker, alone, goes too.
    rules(s3, bucket,
          {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1},
           "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
          {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": ""},
           "Expiration": {"ExpiredObjectDeleteMarker": True}})
    wait_until(lambda: versions(s3, bucket) == ([], []), 20 * DAY_S, "every version and the marker to go")


def test_incomplete_uploads_are_aborted(s3):
    bucket = new_bucket(s3)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="tmp/big")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="tmp/big", UploadId=upload, PartNumber=1, Body=b"part")
    kept = s3.create_multipart_upload(Bucket=bucket, Key="keep/big")["UploadId"]
    rules(s3, bucket, {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                       "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    wait_until(lambda: [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
               == [kept], 10 * DAY_S, "the tmp/ upload to be aborted")


def test_lifecycle_leaves_locked_versions(s3):
    bucket = new_bucket(s3, lock=True)
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    locked = s3.put_object(Bucket=bucket, Key="k", Body=b"locked", ObjectLockMode="COMPLIANCE",
                           ObjectLockRetainUntilDate=until)["VersionId"]
    free = s3.put_object(Bucket=bucket, Key="k", Body=b"free")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"current")
    rules(s3, bucket, {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})
    wait_until(lambda: free not in [v for _, v in versions(s3, bucket)[0]], 10 * DAY_S,
               "the unlocked noncurrent version to expire")
    time.sleep(DAY_S)
    assert locked in [v for _, v in versions(s3, bucket)[0]]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=locked)["Body"].read() == b"locked"


def test_a_rule_removed_before_it_is_due_expires_nothing(s3):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    rules(s3, bucket, {"ID": "slow", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "Expiration": {"Days": 3}})
    time.sleep(DAY_S)
    s3.delete_bucket_lifecycle(Bucket=bucket)
    time.sleep(3 * DAY_S)
    assert keys(s3, bucket) == ["k"]
