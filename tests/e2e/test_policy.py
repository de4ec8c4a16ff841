"""Bucket policies through boto3: public-read prefixes, per-user grants
with conditions, explicit denies over ACLs and ownership, and the
errors S3 gives for policies it would not take."""

import json
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ctl
from test_objects import error_code, status


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal, action, resource, **extra):
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource, **extra}


def deny(principal, action, resource, **extra):
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": resource, **extra}


READER_KEY, READER_SECRET = "POLICYREADERKEY00001", "policy-reader-secret-0123456789abcdefgh"


@pytest.fixture(scope="module")
def reader(node):
    """A second user of the node, as a client."""
    ctl(node, "user", "add", "policy-reader", "--access-key", READER_KEY, "--secret-key", READER_SECRET)
    return node.client(access=READER_KEY, secret=READER_SECRET)


def test_policy_round_trip_status_and_refusals(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert error_code(e) == "NoSuchBucketPolicy" and status(e) == 404
    public = policy(allow("*", "s3:GetObject", f"arn:aws:s3:::{bucket}/public/*"))
    s3.put_bucket_policy(Bucket=bucket, Policy=public)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(public)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True

    refused = [
        "not json",
        policy(allow("*", "s3:GetObject", "arn:aws:s3:::some-other-bucket/*")),
        policy(allow("*", "iam:CreateUser", f"arn:aws:s3:::{bucket}")),
        policy({"Effect": "Allow", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}"}),
        policy(allow("*", "s3:GetObject", f"arn:aws:s3:::{bucket}/*",
                     Condition={"StringAlmost": {"s3:prefix": "a"}})),
    ]
    for text in refused:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_policy(Bucket=bucket, Policy=text)
        assert error_code(e) == "MalformedPolicy" and status(e) == 400, text
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(public), "kept"

    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert error_code(e) == "NoSuchBucketPolicy"


def test_a_public_read_prefix_opens_only_that_prefix(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="public/page.html", Body=b"<p>hi</p>")
    s3.put_object(Bucket=bucket, Key="private/notes", Body=b"secret")
    url = f"{node.endpoint}/{bucket}"
    assert requests.get(f"{url}/public/page.html", timeout=10).status_code == 403, "private by default"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow("*", "s3:GetObject", f"arn:aws:s3:::{bucket}/public/*")))
    r = requests.get(f"{url}/public/page.html", timeout=10)
    assert r.status_code == 200 and r.content == b"<p>hi</p>"
    assert requests.head(f"{url}/public/page.html", timeout=10).status_code == 200
    assert requests.get(f"{url}/private/notes", timeout=10).status_code == 403
    assert requests.get(f"{url}?list-type=2", timeout=10).status_code == 403, "listing not granted"
    assert requests.put(f"{url}/public/new", data=b"x", timeout=10).status_code == 403, "nor writing"
    assert requests.get(f"{url}/public/page.html?acl", timeout=10).status_code == 403, "nor the ACL"


def test_an_explicit_deny_beats_ownership_and_acls_but_not_policy_management(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="logs/a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"2")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        deny("*", ["s3:DeleteObject", "s3:PutObject"], f"arn:aws:s3:::{bucket}/logs/*")))
    for call in (lambda: s3.delete_object(Bucket=bucket, Key="logs/a"),
                 lambda: s3.put_object(Bucket=bucket, Key="logs/c", Body=b"3")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "AccessDenied"
    # A batch delete is decided key by key.
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "logs/a"}, {"Key": "keep/b"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["keep/b"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("logs/a", "AccessDenied")]
    # The owner can always manage the policy, even one that denies it that.
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny("*", "s3:*", f"arn:aws:s3:::{bucket}")))
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket=bucket)
    s3.delete_bucket_policy(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["logs/a"]


def test_per_user_grants_with_conditions(node, s3, bucket, reader):
    s3.put_object(Bucket=bucket, Key="reports/q1", Body=b"q1")
    with pytest.raises(ClientError):
        reader.list_objects_v2(Bucket=bucket, Prefix="reports/")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow({"AWS": "arn:aws:iam::shoal:user/policy-reader"}, "s3:ListBucket", f"arn:aws:s3:::{bucket}",
              Condition={"StringLike": {"s3:prefix": "reports/*"}, "NumericLessThanEquals": {"s3:max-keys": "100"}}),
        allow({"AWS": "arn:aws:iam::shoal:user/policy-reader"}, "s3:GetObject", f"arn:aws:s3:::{bucket}/reports/*",
              Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
        allow({"AWS": "arn:aws:iam::shoal:user/policy-reader"}, "s3:GetObject", f"arn:aws:s3:::{bucket}/remote/*",
              Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    ))
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket, Prefix="reports/", MaxKeys=50)["Contents"]] == ["reports/q1"]
    for args in ({"Prefix": "other/"}, {"Prefix": "reports/", "MaxKeys": 500}, {}):
        with pytest.raises(ClientError):
            reader.list_objects_v2(Bucket=bucket, **args)
    assert reader.get_object(Bucket=bucket, Key="reports/q1")["Body"].read() == b"q1"
    s3.put_object(Bucket=bucket, Key="remote/x", Body=b"x")
    with pytest.raises(ClientError):
        reader.get_object(Bucket=bucket, Key="remote/x")  # not from 10.0.0.0/8
    with pytest.raises(ClientError):
        reader.put_object(Bucket=bucket, Key="reports/q2", Body=b"q2")


def test_a_copy_source_is_judged_by_its_own_bucket_policy(s3, reader, bucket):
    s3.put_object(Bucket=bucket, Key="shared/doc", Body=b"shared")
    s3.put_object(Bucket=bucket, Key="private/doc", Body=b"private")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        allow({"AWS": "arn:aws:iam::shoal:user/policy-reader"}, "s3:GetObject", f"arn:aws:s3:::{bucket}/shared/*"),
        allow({"AWS": "arn:aws:iam::shoal:user/policy-reader"}, "s3:PutObject", f"arn:aws:s3:::{bucket}/copies/*"),
    ))
    reader.copy_object(Bucket=bucket, Key="copies/doc", CopySource={"Bucket": bucket, "Key": "shared/doc"})
    assert s3.get_object(Bucket=bucket, Key="copies/doc")["Body"].read() == b"shared"
    with pytest.raises(ClientError) as e:
        reader.copy_object(Bucket=bucket, Key="copies/other",
                           CopySource={"Bucket": bucket, "Key": "private/doc"})
    assert status(e) == 403
