"""Bucket CORS: the configuration through boto3, preflights and the
headers on actual requests through plain HTTP (what a browser sends)."""

import requests
import pytest
from botocore.exceptions import ClientError

from test_objects import error_code, status

RULES = {
    "CORSRules": [
        {"ID": "app", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["https://*.reader.example"], "AllowedMethods": ["GET", "HEAD"]},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
    ]
}


def test_cors_configuration_round_trip_and_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_code(e) == "NoSuchCORSConfiguration" and status(e) == 404
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0] == RULES["CORSRules"][0]
    assert [r["AllowedOrigins"] for r in got] == [r["AllowedOrigins"] for r in RULES["CORSRules"]]

    bad = [
        ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}, "InvalidRequest"),
        ({"AllowedOrigins": ["*a*"], "AllowedMethods": ["GET"]}, "InvalidRequest"),
        ({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}, "InvalidRequest"),
    ]
    for rule, code in bad:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
        assert error_code(e) == code, rule
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["ID"] == "app", "kept on error"

    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_code(e) == "NoSuchCORSConfiguration"


def preflight(node, path, origin=None, method=None, headers=None):
    sent = {}
    if origin:
        sent["Origin"] = origin
    if method:
        sent["Access-Control-Request-Method"] = method
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(f"{node.endpoint}/{path}", headers=sent, timeout=10)


def test_preflights_are_answered_from_the_rules(node, s3, bucket):
    # Without rules a preflight is refused, not answered permissively.
    r = preflight(node, f"{bucket}/k", "https://app.example", "GET")
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)

    r = preflight(node, f"{bucket}/k", "https://app.example", "PUT", "Content-Type, X-Amz-Date")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-methods"] == "GET, PUT"
    assert r.headers["access-control-allow-headers"] == "content-type, x-amz-date"
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["access-control-expose-headers"] == "ETag"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in r.headers["vary"]

    r = preflight(node, bucket, "https://docs.reader.example", "HEAD")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://docs.reader.example"
    r = preflight(node, bucket, "https://anyone.example", "HEAD")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers

    refused = [
        ("https://app.example", "DELETE", None),  # method no rule allows
        ("https://app.example", "PUT", "authorization"),  # header no rule allows
        ("https://reader.example", "GET", None),  # the wildcard needs a subdomain
        ("https://anyone.example", "GET", None),
    ]
    for origin, method, headers in refused:
        r = preflight(node, f"{bucket}/k", origin, method, headers)
        assert r.status_code == 403, (origin, method, headers)
        assert "AccessForbidden" in r.text and "access-control-allow-origin" not in r.headers
    assert preflight(node, f"{bucket}/k").status_code == 400, "no Origin"
    assert preflight(node, f"{bucket}/k", "https://app.example").status_code == 400, "no method"
    assert preflight(node, "no-such-bucket-cors/k", "https://app.example", "GET").status_code == 404


def test_actual_requests_carry_the_allowing_rules_headers(node, bucket):
    s3 = node.client(signature_version="s3v4")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.put_object(Bucket=bucket, Key="page.txt", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "page.txt"})
    r = requests.get(url, headers={"Origin": "https://app.example"}, timeout=10)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-expose-headers"] == "ETag"

    # Errors carry them too, so the page can read why it failed.
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    r = requests.get(missing, headers={"Origin": "https://app.example"}, timeout=10)
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "https://app.example"

    # An origin no rule allows gets nothing, and a request without Origin
    # gets no CORS headers at all.
    r = requests.get(url, headers={"Origin": "https://evil.example"}, timeout=10)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert "Origin" in r.headers["vary"]
    r = requests.get(url, timeout=10)
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    # The bucket's owner alone reads and changes the rules.
    other = node.client(access="nobody", secret="nothing")
    with pytest.raises(ClientError):
        other.get_bucket_cors(Bucket=bucket)
