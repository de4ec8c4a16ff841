"""Users, ownership and ACLs with boto3 and three users (main, alt, tenant),
managed through `shoal-ctl user …` and seeded from `--credentials-file`."""

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, ctl

USERS = {
    "main": ("MAINACCESSKEY0000001", "main-secret-0123456789"),
    "alt": ("ALTACCESSKEY00000001", "alt-secret-0123456789"),
    "tenant": ("TENANTACCESSKEY00001", "tenant-secret-0123456789"),
}


def client(node, name=None, access=None, secret=None):
    if name:
        access, secret = USERS[name]
    return boto3.client(
        "s3", endpoint_url=node.endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def anonymous(node):
    return boto3.client(
        "s3", endpoint_url=node.endpoint, region_name=REGION,
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _error(e):
    """A ClientError, from itself or from pytest's ExceptionInfo."""
    return getattr(e, "value", e)


def code(e):
    return _error(e).response["Error"]["Code"]


def status(e):
    return _error(e).response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def users_node(tmp_path_factory):
    """A node seeded with the three users from a credentials file."""
    from conftest import Node

    root = tmp_path_factory.mktemp("users")
    creds = root / "users.toml"
    creds.write_text("".join(
        f'[[user]]\nname = "{name}"\naccess_key = "{ak}"\nsecret_key = "{sk}"\n\n'
        for name, (ak, sk) in USERS.items()
    ))
    node = Node(root / "data", extra_args=["--credentials-file", str(creds)]).start()
    yield node
    node.stop()


def user_ids(node):
    listed = json.loads(urllib.request.urlopen(node.admin + "/admin/users", timeout=5).read())
    return {u["name"]: u["id"] for u in listed["users"]}


def test_credentials_file_seeds_users_and_ctl_lists_them(users_node):
    table = ctl(users_node, "user", "list").stdout
    for name, (access_key, secret) in USERS.items():
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert access_key in row and "enabled" in row
        assert secret not in table
    # The --access-key/--secret-key pair is the bootstrap user.
    assert any(line.startswith("admin ") and ACCESS_KEY in line for line in table.splitlines())
    assert SECRET_KEY not in table
    for name in USERS:
        assert client(users_node, name).list_buckets()["Owner"]["DisplayName"] == name


def test_buckets_and_objects_are_isolated_between_users(users_node):
    main, alt = client(users_node, "main"), client(users_node, "alt")
    main.create_bucket(Bucket="main-private")
    main.put_object(Bucket="main-private", Key="secret.txt", Body=b"for main only")
    alt.create_bucket(Bucket="alt-private")

    assert [b["Name"] for b in main.list_buckets()["Buckets"]] == ["main-private"]
    assert [b["Name"] for b in alt.list_buckets()["Buckets"]] == ["alt-private"]
    denied = [
        lambda: alt.get_object(Bucket="main-private", Key="secret.txt"),
        lambda: alt.head_object(Bucket="main-private", Key="secret.txt"),
        lambda: alt.list_objects_v2(Bucket="main-private"),
        lambda: alt.head_bucket(Bucket="main-private"),
        lambda: alt.put_object(Bucket="main-private", Key="intruder", Body=b"x"),
        lambda: alt.delete_object(Bucket="main-private", Key="secret.txt"),
        lambda: alt.delete_bucket(Bucket="main-private"),
        lambda: alt.get_bucket_acl(Bucket="main-private"),
        lambda: alt.get_object_acl(Bucket="main-private", Key="secret.txt"),
        lambda: alt.copy_object(Bucket="alt-private", Key="stolen",
                                CopySource={"Bucket": "main-private", "Key": "secret.txt"}),
        lambda: alt.create_multipart_upload(Bucket="main-private", Key="mpu"),
    ]
    for attempt in denied:
        with pytest.raises(ClientError) as e:
            attempt()
        assert status(e) == 403
    # A missing key looks the same as a forbidden one to someone who may
    # not list the bucket.
    with pytest.raises(ClientError) as e:
        alt.get_object(Bucket="main-private", Key="no-such-key")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        main.get_object(Bucket="main-private", Key="no-such-key")
    assert code(e) == "NoSuchKey"
    # Nothing changed for the owner.
    assert main.get_object(Bucket="main-private", Key="secret.txt")["Body"].read() == b"for main only"
    assert [o["Key"] for o in main.list_objects_v2(Bucket="main-private")["Contents"]] == ["secret.txt"]

    # Bucket names are global: another user's name is taken, your own is yours.
    with pytest.raises(ClientError) as e:
        alt.create_bucket(Bucket="main-private")
    assert code(e) == "BucketAlreadyExists" and status(e) == 409
    with pytest.raises(ClientError) as e:
        main.create_bucket(Bucket="main-private")
    assert code(e) == "BucketAlreadyOwnedByYou" and status(e) == 409


def test_canned_bucket_acls(users_node):
    main, alt, anon = client(users_node, "main"), client(users_node, "alt"), anonymous(users_node)
    for acl in ["private", "public-read", "public-read-write", "authenticated-read"]:
        bucket = f"acl-{acl}"
        main.create_bucket(Bucket=bucket, ACL=acl)
        main.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="public-read")

        def can_list(c):
            try:
                c.list_objects_v2(Bucket=bucket)
                return True
            except ClientError as e:
                assert status(e) == 403, e
                return False

        def can_write(c, key):
            try:
                c.put_object(Bucket=bucket, Key=key, Body=b"w")
                return True
            except ClientError as e:
                assert status(e) == 403, e
                return False

        readable_by_all = acl in ("public-read", "public-read-write")
        assert can_list(alt) == (readable_by_all or acl == "authenticated-read"), acl
        assert can_list(anon) == readable_by_all, acl
        assert can_write(alt, "from-alt") == (acl == "public-read-write"), acl
        assert can_write(anon, "from-anon") == (acl == "public-read-write"), acl
        grants = main.get_bucket_acl(Bucket=bucket)["Grants"]
        expected = {"private": [], "public-read": ["READ"], "public-read-write": ["READ", "WRITE"],
                    "authenticated-read": ["READ"]}[acl]
        # The grants set, then the owner's full control.
        assert [g["Permission"] for g in grants] == expected + ["FULL_CONTROL"]
        # Reading or changing the ACL is the owner's.
        with pytest.raises(ClientError) as e:
            alt.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
        assert status(e) == 403


def test_object_acls_for_other_users_and_anonymous(users_node):
    main, alt, tenant = (client(users_node, n) for n in ("main", "alt", "tenant"))
    anon = anonymous(users_node)
    main.create_bucket(Bucket="objacl")
    main.put_object(Bucket="objacl", Key="private", Body=b"p")
    main.put_object(Bucket="objacl", Key="public", Body=b"pub", ACL="public-read")
    main.put_object(Bucket="objacl", Key="members", Body=b"mem", ACL="authenticated-read")

    def readable(c, key):
        try:
            return c.get_object(Bucket="objacl", Key=key)["Body"].read()
        except ClientError as e:
            assert status(e) == 403, e
            return None

    assert readable(alt, "private") is None and readable(anon, "private") is None
    assert readable(alt, "public") == b"pub" and readable(anon, "public") == b"pub"
    assert readable(alt, "members") == b"mem" and readable(anon, "members") is None

    # A grant by user id (XML), for alt only.
    ids = user_ids(users_node)
    acl = main.get_object_acl(Bucket="objacl", Key="private")
    main.put_object_acl(Bucket="objacl", Key="private", AccessControlPolicy={
        "Owner": acl["Owner"],
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": ids["alt"]}, "Permission": "READ"}],
    })
    assert readable(alt, "private") == b"p"
    assert readable(tenant, "private") is None
    grants = main.get_object_acl(Bucket="objacl", Key="private")["Grants"]
    assert [(g["Grantee"].get("ID"), g["Permission"]) for g in grants] == [
        (ids["alt"], "READ"), (ids["main"], "FULL_CONTROL")]
    # READ does not let alt change the ACL; an unknown grantee is refused.
    with pytest.raises(ClientError) as e:
        alt.put_object_acl(Bucket="objacl", Key="private", ACL="public-read")
    assert status(e) == 403
    with pytest.raises(ClientError) as e:
        main.put_object_acl(Bucket="objacl", Key="private", GrantRead='id="no-such-user"')
    assert code(e) == "InvalidArgument"
    # Back to private with a canned ACL.
    main.put_object_acl(Bucket="objacl", Key="private", ACL="private")
    assert readable(alt, "private") is None


def test_public_write_bucket_objects_belong_to_their_writer(users_node):
    main, alt = client(users_node, "main"), client(users_node, "alt")
    main.create_bucket(Bucket="dropbox", ACL="public-read-write")
    alt.put_object(Bucket="dropbox", Key="alts-file", Body=b"mine")
    ids = user_ids(users_node)
    assert alt.get_object_acl(Bucket="dropbox", Key="alts-file")["Owner"]["ID"] == ids["alt"]
    # The bucket's owner controls every object in its bucket.
    assert main.get_object(Bucket="dropbox", Key="alts-file")["Body"].read() == b"mine"
    main.delete_object(Bucket="dropbox", Key="alts-file")


def test_disabled_key_is_refused_at_once_on_every_core(users_node):
    ctl(users_node, "user", "add", "temp", "--access-key", "TEMPACCESSKEY0000001",
        "--secret-key", "temp-secret-0123456789")
    temp = client(users_node, access="TEMPACCESSKEY0000001", secret="temp-secret-0123456789")
    temp.create_bucket(Bucket="temp-bucket")
    ctl(users_node, "key", "disable", "TEMPACCESSKEY0000001")
    # Every connection lands on some core; ask enough times to reach all.
    for _ in range(16):
        fresh = client(users_node, access="TEMPACCESSKEY0000001", secret="temp-secret-0123456789")
        with pytest.raises(ClientError) as e:
            fresh.list_buckets()
        assert code(e) == "InvalidAccessKeyId" and status(e) == 403
    ctl(users_node, "key", "enable", "TEMPACCESSKEY0000001")
    assert [b["Name"] for b in temp.list_buckets()["Buckets"]] == ["temp-bucket"]
    # Disabling the user refuses all its keys; a new key works once enabled.
    added = json.loads(ctl(users_node, "user", "add-key", "temp").stdout)
    second = client(users_node, access=added["access_key"], secret=added["secret_key"])
    assert second.list_buckets()["Owner"]["DisplayName"] == "temp"
    ctl(users_node, "user", "disable", "temp")
    for c in (temp, second):
        with pytest.raises(ClientError) as e:
            c.list_buckets()
        assert code(e) == "InvalidAccessKeyId"
    ctl(users_node, "user", "enable", "temp")
    assert second.list_buckets()["Owner"]["DisplayName"] == "temp"
    # Its bucket would belong to nobody: the delete is refused until the
    # bucket goes to another user.
    refused = ctl(users_node, "user", "delete", "temp", check=False)
    assert refused.returncode != 0 and "409" in refused.stderr and "temp-bucket" in refused.stderr
    ctl(users_node, "user", "delete", "temp", "--reassign-to", "tenant")
    assert "temp-bucket" in [b["Name"] for b in client(users_node, "tenant").list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        second.list_buckets()
    assert code(e) == "InvalidAccessKeyId"


def test_wrong_secret_is_signature_does_not_match(users_node):
    access, _ = USERS["tenant"]
    with pytest.raises(ClientError) as e:
        client(users_node, access=access, secret="not-the-right-secret").list_buckets()
    assert code(e) == "SignatureDoesNotMatch" and status(e) == 403
    with pytest.raises(ClientError) as e:
        client(users_node, access="NOSUCHACCESSKEY00001", secret="whatever-secret").list_buckets()
    assert code(e) == "InvalidAccessKeyId"


def test_anonymous_requests_are_refused_without_a_grant(users_node):
    anon = anonymous(users_node)
    with pytest.raises(ClientError) as e:
        anon.list_buckets()
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        anon.create_bucket(Bucket="anon-bucket")
    assert status(e) == 403
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket="main-private", Key="secret.txt")
    assert code(e) == "AccessDenied"


def test_ctl_errors_and_admin_token(fresh_node):
    node = fresh_node(extra_args=["--admin-token", "s3cr3t-token"])
    refused = ctl(node, "user", "list", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr
    ctl(node, "user", "add", "ops", token="s3cr3t-token")
    dup = ctl(node, "user", "add", "ops", token="s3cr3t-token", check=False)
    assert dup.returncode != 0 and "409" in dup.stderr
    missing = ctl(node, "user", "disable", "nobody", token="s3cr3t-token", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
    # Health and metrics stay open.
    assert ctl(node, "health").returncode == 0


def test_an_operator_manages_buckets_whoever_owns_them(users_node):
    ctl(users_node, "user", "add", "leaver", "--access-key", "LEAVERACCESSKEY00001",
        "--secret-key", "leaver-secret-0123456789")
    leaver = client(users_node, access="LEAVERACCESSKEY00001", secret="leaver-secret-0123456789")
    leaver.create_bucket(Bucket="leftover")
    for i in range(5):
        leaver.put_object(Bucket="leftover", Key=f"k{i}", Body=b"x" * 1000)
    upload = leaver.create_multipart_upload(Bucket="leftover", Key="half-done")["UploadId"]
    leaver.upload_part(Bucket="leftover", Key="half-done", UploadId=upload, PartNumber=1, Body=b"y")

    listed = ctl(users_node, "bucket", "list").stdout
    row = next(line for line in listed.splitlines() if line.startswith("leftover "))
    assert row.split()[1:4] == ["leaver", "5", "4.9"], row
    info = ctl(users_node, "bucket", "info", "leftover").stdout
    assert "leaver" in info and " 5 " in info

    # The admin user may act on any bucket, as a root account does.
    admin = users_node.client()
    assert admin.get_object(Bucket="leftover", Key="k0")["Body"].read() == b"x" * 1000

    # A user who owns buckets is not deleted out from under them...
    refused = ctl(users_node, "user", "delete", "leaver", check=False)
    assert refused.returncode != 0 and "leftover" in refused.stderr
    # ...but once the bucket is someone else's, it can go.
    ctl(users_node, "bucket", "chown", "leftover", "main")
    ctl(users_node, "user", "delete", "leaver")
    main = client(users_node, "main")
    assert "leftover" in [b["Name"] for b in main.list_buckets()["Buckets"]]
    assert len(main.list_objects_v2(Bucket="leftover")["Contents"]) == 5

    # A bucket with objects is deleted only with --force, which also aborts
    # its uploads; then the name is free again.
    plain = ctl(users_node, "bucket", "delete", "leftover", check=False)
    assert plain.returncode != 0 and "409" in plain.stderr and "--force" in plain.stderr
    forced = json.loads(ctl(users_node, "bucket", "delete", "leftover", "--force").stdout)
    assert forced == {"deleted": "leftover", "objects_deleted": 5, "uploads_aborted": 1}
    assert "leftover" not in ctl(users_node, "bucket", "list").stdout
    client(users_node, "alt").create_bucket(Bucket="leftover")


def test_secrets_never_travel_in_urls(users_node):
    url = users_node.admin + "/admin/users?name=leaky&secret_key=do-not-echo-me-123&access_key=LEAKY00001"
    request = urllib.request.Request(url, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=5)
    assert e.value.code == 400
    message = e.value.read().decode()
    assert "request body" in message and "do-not-echo-me-123" not in message
    # shoal-ctl sends the pair in the body.
    ctl(users_node, "user", "add", "careful", "--access-key", "CAREFULACCESSKEY0001",
        "--secret-key", "careful-secret-0123456789")
    careful = client(users_node, access="CAREFULACCESSKEY0001", secret="careful-secret-0123456789")
    assert careful.list_buckets()["Owner"]["DisplayName"] == "careful"
