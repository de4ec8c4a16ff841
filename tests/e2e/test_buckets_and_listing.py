"""Buckets and listings through boto3."""

import pytest
from botocore.exceptions import ClientError

from test_objects import error_code, status


def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="lifecycle-bucket")
    assert "lifecycle-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="lifecycle-bucket")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="lifecycle-bucket")
    assert error_code(e) == "BucketAlreadyOwnedByYou" and status(e) == 409

    s3.put_object(Bucket="lifecycle-bucket", Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="lifecycle-bucket")
    assert error_code(e) == "BucketNotEmpty" and status(e) == 409

    s3.delete_object(Bucket="lifecycle-bucket", Key="x")
    s3.delete_bucket(Bucket="lifecycle-bucket")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="lifecycle-bucket")
    assert status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="lifecycle-bucket")
    assert error_code(e) == "NoSuchBucket"
    assert "lifecycle-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize("name", ["ab", "has_underscore", "-leading", "192.168.5.4"])
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_code(e) == "InvalidBucketName" and status(e) == 400


def test_create_bucket_with_location_constraint(s3):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="elsewhere-bucket",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert status(e) == 400
    s3.create_bucket(Bucket="here-bucket", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert s3.get_bucket_location(Bucket="here-bucket")["LocationConstraint"] is None


KEYS = sorted(
    [f"photos/2024/{i:03d}.jpg" for i in range(40)]
    + [f"photos/2025/{i:03d}.jpg" for i in range(25)]
    + [f"docs/{c}.txt" for c in "abcdefghij"]
    + ["readme", "zeta/x", "zeta/y", "a b/c", "ünïcødé/key"]
)


@pytest.fixture
def filled(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def list_all(s3, **kwargs):
    keys, prefixes, pages = [], [], 0
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        pages += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        if not page["IsTruncated"]:
            return keys, prefixes, pages
        token = page["NextContinuationToken"]


def test_list_v2_everything_in_order(s3, filled):
    keys, prefixes, _ = list_all(s3, Bucket=filled)
    assert keys == KEYS and prefixes == []


def test_list_v2_pages_with_max_keys(s3, filled):
    keys, _, pages = list_all(s3, Bucket=filled, MaxKeys=7)
    assert keys == KEYS
    assert pages == -(-len(KEYS) // 7)


def test_list_v2_prefix_and_delimiter(s3, filled):
    keys, prefixes, _ = list_all(s3, Bucket=filled, Delimiter="/")
    assert keys == ["readme"]
    assert prefixes == ["a b/", "docs/", "photos/", "zeta/", "ünïcødé/"]
    keys, prefixes, _ = list_all(s3, Bucket=filled, Prefix="photos/", Delimiter="/")
    assert keys == [] and prefixes == ["photos/2024/", "photos/2025/"]
    keys, prefixes, _ = list_all(s3, Bucket=filled, Prefix="photos/2025/", Delimiter="/", MaxKeys=10)
    assert keys == [k for k in KEYS if k.startswith("photos/2025/")] and prefixes == []
    # Paging one entry at a time still rolls each prefix up exactly once.
    keys, prefixes, pages = list_all(s3, Bucket=filled, Delimiter="/", MaxKeys=1)
    assert keys == ["readme"] and len(prefixes) == 5 and pages == 6


def test_list_v2_start_after(s3, filled):
    keys, _, _ = list_all(s3, Bucket=filled, StartAfter="photos/2025/020.jpg")
    assert keys == [k for k in KEYS if k > "photos/2025/020.jpg"]


def test_list_v1_marker_paging(s3, filled):
    keys, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=filled, Marker=marker, MaxKeys=9)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        marker = page.get("NextMarker") or keys[-1]
    assert keys == KEYS


def test_list_bad_max_keys(s3, filled):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=filled, MaxKeys=-1)
    assert status(e) == 400


def test_list_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="never-created-bucket")
    assert error_code(e) == "NoSuchBucket"


def test_list_object_versions_shows_current_objects_as_null(s3, filled):
    versions, prefixes, marker = [], [], None
    while True:
        args = {"Bucket": filled, "MaxKeys": 11}
        if marker:
            args["KeyMarker"] = marker
        page = s3.list_object_versions(**args)
        versions += page.get("Versions", [])
        prefixes += page.get("CommonPrefixes", [])
        if not page["IsTruncated"]:
            break
        marker = page["NextKeyMarker"]
    assert [v["Key"] for v in versions] == KEYS
    assert all(v["VersionId"] == "null" and v["IsLatest"] for v in versions)
    page = s3.list_object_versions(Bucket=filled, Delimiter="/")
    assert [v["Key"] for v in page["Versions"]] == ["readme"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a b/", "docs/", "photos/", "zeta/", "ünïcødé/"]


def test_a_listing_of_rewritten_keys_compacts_them_away(fresh_node):
    # Every PUT of a key leaves its earlier metadata entry behind until
    # rocksdb compacts; a listing that steps over more than one such entry
    # for every two keys it returns has its bucket's range compacted, and
    # the next listing steps over none.
    from concurrent.futures import ThreadPoolExecutor

    from conftest import metric_sum, wait_until

    node = fresh_node(cores=1, extra_args=["--shards", "1"])
    s3 = node.client()
    s3.create_bucket(Bucket="rewritten")
    keys = [f"k{i:03}" for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        for round in range(3):
            list(pool.map(lambda k: s3.put_object(Bucket="rewritten", Key=k, Body=f"{round}".encode()), keys))

    def listed():
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="rewritten")
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    assert metric_sum(node, "shoal_meta_read_compactions_started_total") == 0
    assert listed() == keys
    hidden = metric_sum(node, "shoal_meta_listing_hidden_entries_total")
    assert hidden >= 2 * len(keys), "two older entries a key"
    assert metric_sum(node, "shoal_meta_read_compactions_started_total") == 1
    wait_until(lambda: metric_sum(node, "shoal_meta_read_compactions_finished_total") == 1,
               30, "the compaction to finish")
    assert listed() == keys
    assert metric_sum(node, "shoal_meta_listing_hidden_entries_total") == hidden
    assert s3.get_object(Bucket="rewritten", Key="k007")["Body"].read() == b"2"
