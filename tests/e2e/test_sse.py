"""Server-side encryption through boto3: SSE-C over HTTPS (the client's
key on every request, never stored), SSE-S3 (keys sealed by the node's
master key) and a bucket default, across PUT, multipart, copies, ranges and
browser forms; and a look at the data directory to see that what the node
stores is not the plaintext."""

import base64
import hashlib
import os
import stat

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Node
from test_objects import error_code, status
from test_tls import ScratchCA

MIB = 1024 * 1024


def customer(key):
    """boto3's SSE-C arguments for a 32-byte key."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_source_customer(key):
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    """A node serving HTTPS (SSE-C keys travel only over TLS), as a client."""
    root = tmp_path_factory.mktemp("sse")
    ca = ScratchCA(root / "pki")
    cert, key = ca.issue("s3")
    node = Node(root / "data", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    node.start()
    client = boto3.client(
        "s3", endpoint_url=f"https://127.0.0.1:{node.s3_port}", region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, verify=str(ca.cert),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    client.node = node
    yield client
    node.stop()


def new_bucket(client, name):
    client.create_bucket(Bucket=name)
    return name


def stored_files(data_dir):
    """Every file the node keeps, read whole."""
    for root, _, files in os.walk(data_dir):
        for name in files:
            if name.startswith("ballast"):
                continue
            with open(os.path.join(root, name), "rb") as f:
                yield f.read()


def stored_anywhere(data_dir, needle):
    return any(needle in blob for blob in stored_files(data_dir))


def test_sse_c_objects_need_their_key_and_are_not_stored_in_plaintext(https):
    bucket = new_bucket(https, "sse-c-basics")
    key = os.urandom(32)
    small, large = os.urandom(700), os.urandom(3 * MIB + 123)
    plain_marker = os.urandom(2048)

    put = https.put_object(Bucket=bucket, Key="small", Body=small, **customer(key))
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
    https.put_object(Bucket=bucket, Key="large", Body=large, **customer(key))
    https.put_object(Bucket=bucket, Key="plain", Body=plain_marker)

    for name, body in [("small", small), ("large", large)]:
        got = https.get_object(Bucket=bucket, Key=name, **customer(key))
        assert got["Body"].read() == body
        assert got["SSECustomerAlgorithm"] == "AES256"
        # The ETag is still the MD5 of what the client sent.
        assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
        head = https.head_object(Bucket=bucket, Key=name, **customer(key))
        assert head["ContentLength"] == len(body)

        with pytest.raises(ClientError) as e:
            https.get_object(Bucket=bucket, Key=name)
        assert status(e) == 400 and error_code(e) == "InvalidRequest"
        with pytest.raises(ClientError) as e:
            https.get_object(Bucket=bucket, Key=name, **customer(os.urandom(32)))
        assert status(e) == 403 and error_code(e) == "AccessDenied"
        with pytest.raises(ClientError) as e:
            https.head_object(Bucket=bucket, Key=name)
        assert status(e) == 400

    # Ranges decrypt from any byte, across chunk boundaries (1 MiB).
    for first, last in [(0, 0), (5, 4100), (MIB - 7, MIB + 9), (3 * MIB, 3 * MIB + 122)]:
        got = https.get_object(Bucket=bucket, Key="large", Range=f"bytes={first}-{last}",
                               **customer(key))
        assert got["Body"].read() == large[first:last + 1], (first, last)

    # SSE-C headers on a plaintext object are a mistake, not ignored.
    with pytest.raises(ClientError) as e:
        https.get_object(Bucket=bucket, Key="plain", **customer(key))
    assert status(e) == 400

    # What the node keeps (blob logs, raft logs, metadata) never holds the
    # plaintext: a control object stored without encryption shows the
    # search would find it.
    data_dir = https.node.data_dir
    assert stored_anywhere(data_dir, plain_marker[1000:1064])
    assert not stored_anywhere(data_dir, small[300:364])
    assert not stored_anywhere(data_dir, large[2 * MIB:2 * MIB + 64])
    # Nor the key.
    assert not stored_anywhere(data_dir, key)


def test_malformed_or_conflicting_encryption_requests_are_refused(https, s3, bucket):
    key = os.urandom(32)
    body = b"x" * 10
    cases = [
        # With the MD5 given, boto3 sends the key as it is: base64.
        ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
          "SSECustomerKeyMD5": base64.b64encode(b"\0" * 16).decode()}, 400, "InvalidArgument"),
        ({"SSECustomerAlgorithm": "AES128", "SSECustomerKey": key}, 400,
         "InvalidEncryptionAlgorithmError"),
        ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(16)}, 400,
         "InvalidArgument"),
        ({"ServerSideEncryption": "AES256", **customer(key)}, 400, "InvalidArgument"),
        ({"ServerSideEncryption": "AES256", "SSEKMSKeyId": "k1"}, 400, "InvalidArgument"),
        ({"ServerSideEncryption": "aws:kms"}, 501, "NotImplemented"),
    ]
    target = new_bucket(https, "sse-refusals")
    for args, code, name in cases:
        with pytest.raises(ClientError) as e:
            https.put_object(Bucket=target, Key="k", Body=body, **args)
        assert (status(e), error_code(e)) == (code, name), args
    assert "Contents" not in https.list_objects_v2(Bucket=target)

    # Over plain HTTP the key would travel in clear: refused unless the
    # operator says the network is trusted (--sse-c-over-http).
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=body, **customer(key))
    assert status(e) == 400 and "HTTPS" in e.value.response["Error"]["Message"]


def test_sse_s3_and_the_bucket_default(s3, bucket):
    body = os.urandom(2 * MIB + 5)
    put = s3.put_object(Bucket=bucket, Key="asked", Body=body, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="asked")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body
    got = s3.get_object(Bucket=bucket, Key="asked", Range="bytes=1048570-1048590")
    assert got["Body"].read() == body[1048570:1048591]
    # Reads name no encryption: the header is for writes (boto3 will not
    # send it on a GET; a hook does).
    def add_header(params, **_):
        params["headers"]["x-amz-server-side-encryption"] = "AES256"

    s3.meta.events.register("before-call.s3.HeadObject", add_header)
    try:
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key="asked")
        assert status(e) == 400
    finally:
        s3.meta.events.unregister("before-call.s3.HeadObject", add_header)

    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_code(e) == "ServerSideEncryptionConfigurationNotFoundError" and status(e) == 404
    s3.put_object(Bucket=bucket, Key="before", Body=b"plain")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    put = s3.put_object(Bucket=bucket, Key="after", Body=b"defaulted")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="after")["ServerSideEncryption"] == "AES256"
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="before")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert status(e) == 501

    # Multipart under the default: every part encrypted, the object too.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")
    assert upload["ServerSideEncryption"] == "AES256"
    parts = [os.urandom(5 * MIB), os.urandom(MIB + 3)]
    etags = [s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload["UploadId"],
                            PartNumber=n + 1, Body=p)["ETag"] for n, p in enumerate(parts)]
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": t, "PartNumber": n + 1}
                                                            for n, t in enumerate(etags)]})
    got = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == parts[1]
    assert s3.get_object(Bucket=bucket, Key="parts")["Body"].read() == b"".join(parts)

    s3.delete_bucket_encryption(Bucket=bucket)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="later", Body=b"p")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"defaulted"


def test_sse_c_multipart_upload_needs_the_key_on_every_step(https):
    bucket = new_bucket(https, "sse-c-multipart")
    key = os.urandom(32)
    upload = https.create_multipart_upload(Bucket=bucket, Key="mp", **customer(key))
    upload_id = upload["UploadId"]
    assert upload["SSECustomerAlgorithm"] == "AES256"
    parts = [os.urandom(5 * MIB + 1), os.urandom(777)]
    for args in [{}, customer(os.urandom(32))]:
        with pytest.raises(ClientError) as e:
            https.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1,
                              Body=parts[0], **args)
        assert status(e) == 400
    etags = [https.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=n + 1,
                               Body=p, **customer(key))["ETag"] for n, p in enumerate(parts)]
    chosen = {"Parts": [{"ETag": t, "PartNumber": n + 1} for n, t in enumerate(etags)]}
    with pytest.raises(ClientError) as e:
        https.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                        MultipartUpload=chosen)
    assert status(e) == 400
    done = https.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                           MultipartUpload=chosen, **customer(key))
    headers = done["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
    whole = b"".join(parts)
    assert https.get_object(Bucket=bucket, Key="mp", **customer(key))["Body"].read() == whole
    got = https.get_object(Bucket=bucket, Key="mp", PartNumber=2, **customer(key))
    assert got["Body"].read() == parts[1]
    span = https.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MIB - 10}-{5 * MIB + 20}",
                            **customer(key))
    assert span["Body"].read() == whole[5 * MIB - 10:5 * MIB + 21]


def test_copies_change_or_keep_encryption(https):
    bucket = new_bucket(https, "sse-copies")
    key_a, key_b = os.urandom(32), os.urandom(32)
    body = os.urandom(MIB + 4321)
    https.put_object(Bucket=bucket, Key="c", Body=body, **customer(key_a))

    # SSE-C source: the copy needs the source's key, then takes whatever
    # the destination asks for.
    with pytest.raises(ClientError) as e:
        https.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "c"})
    assert status(e) == 400
    src = copy_source_customer(key_a)
    https.copy_object(Bucket=bucket, Key="to-s3", CopySource={"Bucket": bucket, "Key": "c"},
                      ServerSideEncryption="AES256", **src)
    got = https.get_object(Bucket=bucket, Key="to-s3")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body
    https.copy_object(Bucket=bucket, Key="to-b", CopySource={"Bucket": bucket, "Key": "c"},
                      **src, **customer(key_b))
    assert https.get_object(Bucket=bucket, Key="to-b", **customer(key_b))["Body"].read() == body
    with pytest.raises(ClientError) as e:
        https.get_object(Bucket=bucket, Key="to-b", **customer(key_a))
    assert status(e) == 403
    https.copy_object(Bucket=bucket, Key="to-plain", CopySource={"Bucket": bucket, "Key": "c"},
                      **src)
    got = https.get_object(Bucket=bucket, Key="to-plain")
    assert "ServerSideEncryption" not in got and got["Body"].read() == body

    # Re-encrypting an object in place is a copy onto itself.
    https.copy_object(Bucket=bucket, Key="to-plain", CopySource={"Bucket": bucket, "Key": "to-plain"},
                      **customer(key_b))
    assert https.get_object(Bucket=bucket, Key="to-plain", **customer(key_b))["Body"].read() == body

    # A part copied from an SSE-C source into an SSE-S3 upload.
    upload = https.create_multipart_upload(Bucket=bucket, Key="assembled",
                                           ServerSideEncryption="AES256")
    part = https.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload["UploadId"],
                                  PartNumber=1, CopySource={"Bucket": bucket, "Key": "c"},
                                  CopySourceRange="bytes=10-2000", **src)
    https.complete_multipart_upload(
        Bucket=bucket, Key="assembled", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["CopyPartResult"]["ETag"], "PartNumber": 1}]})
    got = https.get_object(Bucket=bucket, Key="assembled")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body[10:2001]


def test_browser_form_upload_under_the_bucket_default(node, bucket):
    s3 = node.client(signature_version="s3v4")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    form = s3.generate_presigned_post(Bucket=bucket, Key="form.txt")
    answer = requests.post(form["url"], data=form["fields"],
                           files={"file": ("form.txt", b"from a browser")}, timeout=10)
    assert answer.status_code == 204, answer.text
    assert answer.headers["x-amz-server-side-encryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="form.txt")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == b"from a browser"


def test_sse_s3_objects_outlive_a_restart_with_the_generated_master_key(fresh_node):
    node = fresh_node()
    client = node.client()
    client.create_bucket(Bucket="keep")
    body = os.urandom(MIB + 9)
    client.put_object(Bucket="keep", Key="k", Body=body, ServerSideEncryption="AES256")
    key_file = os.path.join(node.data_dir, "sse-master-key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    node.stop()
    node.start()
    assert node.client().get_object(Bucket="keep", Key="k")["Body"].read() == body
