"""SigV2 request signing (HMAC-SHA1), which s3cmd's and older SDKs' users
still meet: boto3's `s3` signer in the Authorization header and in
presigned URLs, on a node that opted in with `--sigv2`, and refused by
name on one that did not."""

import os

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import Node
from test_objects import error_code, status


@pytest.fixture(scope="module")
def v2_node(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("sigv2") / "data", extra_args=["--sigv2"]).start()
    yield node
    node.stop()


def test_header_signed_requests_work_with_the_flag(v2_node):
    s3 = v2_node.client(signature_version="s3")
    s3.create_bucket(Bucket="v2-bucket")
    body = os.urandom(100_000)
    s3.put_object(Bucket="v2-bucket", Key="dir/a b+c.bin", Body=body, ContentType="app/x",
                  Metadata={"who": "v2"})
    got = s3.get_object(Bucket="v2-bucket", Key="dir/a b+c.bin")
    assert got["Body"].read() == body and got["Metadata"] == {"who": "v2"}
    # Subresources are part of what is signed.
    s3.put_object_tagging(Bucket="v2-bucket", Key="dir/a b+c.bin",
                          Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    tags = s3.get_object_tagging(Bucket="v2-bucket", Key="dir/a b+c.bin")["TagSet"]
    assert tags == [{"Key": "k", "Value": "v"}]
    listed = s3.list_objects_v2(Bucket="v2-bucket", Prefix="dir/")["Contents"]
    assert [o["Key"] for o in listed] == ["dir/a b+c.bin"]
    # Multipart: uploadId and partNumber are signed subresources.
    upload = s3.create_multipart_upload(Bucket="v2-bucket", Key="mp")
    part = s3.upload_part(Bucket="v2-bucket", Key="mp", UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"part")
    s3.complete_multipart_upload(Bucket="v2-bucket", Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    assert s3.get_object(Bucket="v2-bucket", Key="mp")["Body"].read() == b"part"

    # Subresources newer than SigV2 (which botocore leaves out of what it
    # signs) work too.
    s3.put_bucket_encryption(Bucket="v2-bucket", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert s3.get_bucket_encryption(Bucket="v2-bucket")["ServerSideEncryptionConfiguration"]
    attributes = s3.get_object_attributes(Bucket="v2-bucket", Key="mp", ObjectAttributes=["ObjectSize"])
    assert attributes["ObjectSize"] == 4
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket="v2-bucket")
    assert error_code(e) == "OwnershipControlsNotFoundError"
    s3.delete_bucket_encryption(Bucket="v2-bucket")

    wrong = v2_node.client(signature_version="s3", secret="not-the-secret-at-all")
    with pytest.raises(ClientError) as e:
        wrong.get_object(Bucket="v2-bucket", Key="mp")
    assert error_code(e) == "SignatureDoesNotMatch" and status(e) == 403


def test_presigned_v2_urls_and_their_expiry(v2_node):
    s3 = v2_node.client(signature_version="s3")
    s3.create_bucket(Bucket="v2-presigned")
    s3.put_object(Bucket="v2-presigned", Key="k", Body=b"shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "v2-presigned", "Key": "k"},
                                    ExpiresIn=60)
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"shared"
    put_url = s3.generate_presigned_url("put_object",
                                        Params={"Bucket": "v2-presigned", "Key": "up"},
                                        ExpiresIn=60)
    assert requests.put(put_url, data=b"uploaded", timeout=10).status_code == 200
    assert s3.get_object(Bucket="v2-presigned", Key="up")["Body"].read() == b"uploaded"
    expired = s3.generate_presigned_url("get_object",
                                        Params={"Bucket": "v2-presigned", "Key": "k"},
                                        ExpiresIn=-10)
    answer = requests.get(expired, timeout=10)
    assert answer.status_code == 403 and "AccessDenied" in answer.text
    tampered = url.replace("/k?", "/other?")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_refused_by_name_without_the_flag(node):
    s3 = node.client(signature_version="s3")
    with pytest.raises(ClientError) as e:
        s3.list_buckets()
    assert status(e) == 403 and "--sigv2" in e.value.response["Error"]["Message"]
