"""Object ownership controls: who owns what another user writes into a
bucket (the writer, or the bucket's owner), and BucketOwnerEnforced, which
turns ACLs off as new AWS buckets have it."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ctl
from test_objects import error_code, status

WRITER_KEY, WRITER_SECRET = "OWNERSHIPWRITER00001", "ownership-writer-secret-0123456789abcd"


@pytest.fixture(scope="module")
def writer(node):
    """Another user, allowed by bucket policy to write into the buckets."""
    ctl(node, "user", "add", "ownership-writer", "--access-key", WRITER_KEY,
        "--secret-key", WRITER_SECRET)
    return node.client(access=WRITER_KEY, secret=WRITER_SECRET)


def open_to_everyone(s3, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))


def owner_of(s3, bucket, key):
    return s3.get_object_acl(Bucket=bucket, Key=key)["Owner"]["ID"]


def ownership(s3, bucket):
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    return [r["ObjectOwnership"] for r in rules]


def test_controls_round_trip(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert (status(e), error_code(e)) == (404, "OwnershipControlsNotFoundError")
    for setting in ["ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"]:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": setting}]})
        assert ownership(s3, bucket) == [setting]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=bucket)
    assert status(e) == 404


def test_bucket_owner_enforced_turns_acls_off(s3, writer):
    s3.create_bucket(Bucket="enforced-bucket", ObjectOwnership="BucketOwnerEnforced")
    assert ownership(s3, "enforced-bucket") == ["BucketOwnerEnforced"]
    open_to_everyone(s3, "enforced-bucket")
    me = s3.get_bucket_acl(Bucket="enforced-bucket")["Owner"]["ID"]

    writer.put_object(Bucket="enforced-bucket", Key="plain", Body=b"x")
    writer.put_object(Bucket="enforced-bucket", Key="handed", Body=b"x",
                      ACL="bucket-owner-full-control")
    assert owner_of(s3, "enforced-bucket", "plain") == me
    assert owner_of(s3, "enforced-bucket", "handed") == me
    for write in [
        lambda: writer.put_object(Bucket="enforced-bucket", Key="k", Body=b"x", ACL="public-read"),
        lambda: writer.create_multipart_upload(Bucket="enforced-bucket", Key="k", ACL="private"),
        lambda: writer.copy_object(Bucket="enforced-bucket", Key="c", ACL="public-read",
                                   CopySource={"Bucket": "enforced-bucket", "Key": "plain"}),
        lambda: s3.put_bucket_acl(Bucket="enforced-bucket", ACL="private"),
        lambda: s3.put_object_acl(Bucket="enforced-bucket", Key="plain", ACL="public-read"),
    ]:
        with pytest.raises(ClientError) as e:
            write()
        assert (status(e), error_code(e)) == (400, "AccessControlListNotSupported")

    # Turning ACLs off needs a bucket ACL that grants nothing.
    s3.create_bucket(Bucket="public-bucket", ACL="public-read")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_ownership_controls(
            Bucket="public-bucket",
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert error_code(e) == "InvalidBucketAclWithObjectOwnership"


def test_acls_written_before_enforcement_grant_nothing(s3, writer, bucket):
    s3.put_object(Bucket=bucket, Key="was-public", Body=b"x", ACL="public-read-write")
    assert writer.get_object(Bucket=bucket, Key="was-public")["Body"].read() == b"x"
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    with pytest.raises(ClientError) as e:
        writer.get_object(Bucket=bucket, Key="was-public")
    assert status(e) == 403


def test_bucket_owner_preferred_takes_what_is_handed_over(s3, writer, bucket):
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    open_to_everyone(s3, bucket)
    me = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    writer.put_object(Bucket=bucket, Key="kept", Body=b"x")
    writer.put_object(Bucket=bucket, Key="handed", Body=b"x", ACL="bucket-owner-full-control")
    assert owner_of(s3, bucket, "kept") != me
    assert owner_of(s3, bucket, "handed") == me
    # ACLs still count here.
    s3.put_object_acl(Bucket=bucket, Key="handed", ACL="public-read")
