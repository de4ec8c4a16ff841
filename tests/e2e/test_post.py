"""Browser upload forms (POST Object): boto3's generate_presigned_post
(SigV4), unsigned forms to public buckets, policy conditions, what the
form asks back, and SigV2 forms only where the node accepts them."""

import base64
import datetime
import hashlib
import hmac
import json
import os

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY


def post(node, bucket, fields, body=b"form file body", filename="upload.txt"):
    """Sends a form as a browser does: fields first, then the file."""
    files = list(fields.items()) + [("file", (filename, body, "text/plain"))]
    return requests.post(f"{node.endpoint}/{bucket}", files=files, allow_redirects=False, timeout=30)


def presigned(s3, bucket, key, conditions=None, fields=None):
    return s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=600)


def test_a_presigned_post_stores_the_file_with_its_fields(node, bucket):
    s3 = node.client(signature_version="s3v4")
    form = presigned(
        s3, bucket, "uploads/${filename}",
        fields={"Content-Type": "image/png", "x-amz-meta-album": "summer", "Cache-Control": "max-age=9"},
        conditions=[["starts-with", "$key", "uploads/"], {"Content-Type": "image/png"},
                    {"x-amz-meta-album": "summer"}, {"Cache-Control": "max-age=9"},
                    ["content-length-range", 1, 5 << 20]],
    )
    body = os.urandom(3 << 20)  # several chunks
    r = post(node, bucket, form["fields"], body, filename="beach.png")
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="uploads/beach.png")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"album": "summer"}
    assert got["CacheControl"] == "max-age=9"


def test_the_policy_is_checked_before_anything_is_stored(node, bucket):
    s3 = node.client(signature_version="s3v4")
    form = presigned(s3, bucket, "a.txt", conditions=[["content-length-range", 5, 10]])
    fields = form["fields"]
    cases = [
        (dict(fields, key="b.txt"), 403, "AccessDenied"),  # the key is signed
        (dict(fields, **{"x-amz-meta-extra": "1"}), 403, "AccessDenied"),  # no condition names it
        (dict(fields, **{"x-amz-signature": "0" * 64}), 403, "SignatureDoesNotMatch"),
        ({k: v for k, v in fields.items() if k != "x-amz-signature"}, 400, None),
    ]
    for sent, code, s3_code in cases:
        r = post(node, bucket, sent, b"12345678")
        assert r.status_code == code, (sent.keys(), r.text)
        if s3_code:
            assert f"<Code>{s3_code}</Code>" in r.text
    # The refusal names the condition as the policy wrote it.
    r = post(node, bucket, dict(fields, key="b.txt"), b"12345678")
    assert "Policy Condition failed: [&quot;eq&quot;, &quot;$key&quot;, &quot;a.txt&quot;]" in r.text
    for body, s3_code in [(b"1234", "EntityTooSmall"), (b"x" * 11, "EntityTooLarge")]:
        r = post(node, bucket, fields, body)
        assert r.status_code == 400 and f"<Code>{s3_code}</Code>" in r.text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="a.txt")
    assert post(node, bucket, fields, b"12345678").status_code == 204
    # Into a bucket other than the one signed for.
    s3.create_bucket(Bucket=bucket + "-other")
    r = post(node, bucket + "-other", fields, b"12345678")
    assert r.status_code == 403


def test_what_the_form_asks_back(node, bucket):
    s3 = node.client(signature_version="s3v4")
    form = presigned(s3, bucket, "k", fields={"success_action_status": "201"},
                     conditions=[{"success_action_status": "201"}])
    r = post(node, bucket, form["fields"])
    assert r.status_code == 201 and "<PostResponse" in r.text and "<Key>k</Key>" in r.text
    target = "https://app.example/done?from=form"
    form = presigned(s3, bucket, "k2", fields={"success_action_redirect": target},
                     conditions=[{"success_action_redirect": target}])
    r = post(node, bucket, form["fields"])
    assert r.status_code == 303
    etag = s3.head_object(Bucket=bucket, Key="k2")["ETag"]
    assert r.headers["Location"] == f"{target}&bucket={bucket}&key=k2&etag={requests.utils.quote(etag, safe='')}"


def test_unsigned_forms_need_a_bucket_anyone_may_write(node, s3, bucket):
    r = post(node, bucket, {"key": "anon.txt"})
    assert r.status_code == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    r = post(node, bucket, {"key": "anon.txt", "tagging": "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"})
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"form file body"
    assert s3.get_object_tagging(Bucket=bucket, Key="anon.txt")["TagSet"] == [{"Key": "k", "Value": "v"}]
    # A policy without a signature, and fields asking for what Shoal lacks.
    r = post(node, bucket, {"key": "x", "policy": base64.b64encode(b"{}").decode()})
    assert r.status_code == 400
    r = post(node, bucket, {"key": "x", "x-amz-server-side-encryption": "aws:kms"})
    assert r.status_code == 501
    r = requests.post(f"{node.endpoint}/{bucket}", data=b"key=x", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400


def sigv2_form(bucket, key):
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    policy = base64.b64encode(json.dumps({
        "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [{"bucket": bucket}, {"key": key}],
    }).encode()).decode()
    signature = base64.b64encode(hmac.new(SECRET_KEY.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"key": key, "AWSAccessKeyId": ACCESS_KEY, "policy": policy, "signature": signature}


def test_sigv2_forms_only_with_the_flag(node, fresh_node, bucket):
    r = post(node, bucket, sigv2_form(bucket, "v2.txt"))
    assert r.status_code == 403 and "--sigv2" in r.text
    opted = fresh_node(extra_args=["--sigv2"])
    opted.client().create_bucket(Bucket="forms")
    assert post(opted, "forms", sigv2_form("forms", "v2.txt")).status_code == 204
    assert opted.client().get_object(Bucket="forms", Key="v2.txt")["Body"].read() == b"form file body"
