"""Virtual-hosted-style addressing (`--domain`): `Host: bucket.<domain>`.

boto3 is pointed at `http://s3.shoal.test:PORT` with virtual addressing and
sent through the node as if it were an HTTP proxy, so no DNS is needed: the
request line carries the absolute URL and `Host` names the bucket."""

import boto3
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY

DOMAIN = "s3.shoal.test"


def hosted_client(node):
    return boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{node.s3_port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "virtual"},
            proxies={"http": f"http://127.0.0.1:{node.s3_port}"},
            retries={"max_attempts": 1},
        ),
    )


def test_virtual_hosted_and_path_style_side_by_side(fresh_node):
    node = fresh_node(extra_args=["--domain", DOMAIN])
    hosted = hosted_client(node)
    path = node.client()
    hosted.create_bucket(Bucket="vhost")
    hosted.put_object(Bucket="vhost", Key="dir/a b.txt", Body=b"hello")
    # The same object, path style.
    assert path.get_object(Bucket="vhost", Key="dir/a b.txt")["Body"].read() == b"hello"
    path.put_object(Bucket="vhost", Key="second", Body=b"two")
    listed = hosted.list_objects_v2(Bucket="vhost")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b.txt", "second"]
    assert hosted.get_object(Bucket="vhost", Key="second")["Body"].read() == b"two"
    assert [b["Name"] for b in hosted.list_buckets()["Buckets"]] == ["vhost"]
    hosted.delete_objects(Bucket="vhost", Delete={"Objects": [{"Key": "dir/a b.txt"}, {"Key": "second"}]})
    hosted.delete_bucket(Bucket="vhost")
    assert path.list_buckets()["Buckets"] == []
