"""Hand-made S3 requests for what SDKs will not send: aws-chunked bodies with
chunk signatures, broken bodies, `Expect: 100-continue` on a raw socket."""

import datetime
import hashlib
import hmac
import http.client
import socket
import zlib
import base64
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, SECRET_KEY

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def signed_headers(node, method, path, headers=None, payload_hash="UNSIGNED-PAYLOAD", secret=SECRET_KEY):
    """SigV4 headers for a request, signed by botocore (header auth)."""
    headers = dict(headers or {})
    headers["x-amz-content-sha256"] = payload_hash
    path, _, query = path.partition("?")
    url = node.endpoint + quote(path) + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", REGION).add_auth(req)
    return dict(req.headers.items())


def send(node, method, path, headers, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", node.s3_port, timeout=30)
    path, _, query = path.partition("?")
    conn.request(method, quote(path) + ("?" + query if query else ""), body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def _hmac(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


def signing_key(date, secret=SECRET_KEY):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, REGION)
    k = _hmac(k, "s3")
    return _hmac(k, "aws4_request")


def streaming_signed_body(headers, payload, chunk_size=64 * 1024, tamper_chunk=None, secret=SECRET_KEY):
    """Frames `payload` as STREAMING-AWS4-HMAC-SHA256-PAYLOAD, chaining chunk
    signatures from the seed signature in `headers`."""
    auth = headers["Authorization"]
    seed = auth.split("Signature=")[1].strip()
    amz_date = headers["X-Amz-Date"]
    date = amz_date[:8]
    scope = f"{date}/{REGION}/s3/aws4_request"
    key = signing_key(date, secret)
    previous = seed
    out = bytearray()
    chunks = [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for index, chunk in enumerate(chunks):
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if tamper_chunk == index:
            signature = "0" * 64
        out += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        previous = signature
    return bytes(out)


def put_streaming_signed(node, bucket, key, payload, tamper_chunk=None):
    path = f"/{bucket}/{key}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
    }
    # The framed length depends only on sizes, so sign with a placeholder body first.
    framed_len = len(streaming_signed_body({"Authorization": "Signature=" + "0" * 64,
                                            "X-Amz-Date": "20200101T000000Z"}, payload))
    headers["Content-Length"] = str(framed_len)
    headers = signed_headers(node, "PUT", path, headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = streaming_signed_body(headers, payload, tamper_chunk=tamper_chunk)
    assert len(body) == framed_len
    return send(node, "PUT", path, headers, body)


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def unsigned_trailer_body(payload, trailer_value, chunk_size=64 * 1024):
    out = bytearray()
    for i in range(0, len(payload), chunk_size):
        chunk = payload[i:i + chunk_size]
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    out += b"0\r\n" + f"x-amz-checksum-crc32:{trailer_value}\r\n\r\n".encode()
    return bytes(out)


def put_unsigned_trailer(node, bucket, key, payload, trailer_value=None):
    path = f"/{bucket}/{key}"
    body = unsigned_trailer_body(payload, trailer_value or crc32_b64(payload))
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "Content-Length": str(len(body)),
    }
    headers = signed_headers(node, "PUT", path, headers, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    return send(node, "PUT", path, headers, body)


def expect_continue(node, bucket, key, payload):
    """PUT with `Expect: 100-continue` over a raw socket. Returns the first
    status line the server sent, and the final status line (after sending the
    body only if the first was 100)."""
    path = f"/{bucket}/{key}"
    headers = signed_headers(node, "PUT", path, {
        "Expect": "100-continue",
        "Content-Length": str(len(payload)),
    })
    request = (f"PUT {quote(path)} HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    with socket.create_connection(("127.0.0.1", node.s3_port), timeout=10) as s:
        s.sendall(request.encode())
        first = _read_head(s)
        if not first.startswith("HTTP/1.1 100"):
            return first, first
        s.sendall(payload)
        return first, _read_head(s)


def _read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def expect_continue_with_headers(node, path, headers):
    """Sends only the head of a request that asks for `100-continue` and
    returns the first status line the server answers with."""
    request = (f"PUT {quote(path)} HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    with socket.create_connection(("127.0.0.1", node.s3_port), timeout=10) as s:
        s.sendall(request.encode())
        first = _read_head(s)
    return first, None
