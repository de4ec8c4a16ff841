"""Object and bucket tagging through boto3: tags on PUT, copy and
multipart, per version, S3's limits and their errors."""

import os

import pytest
from botocore.exceptions import ClientError


def error_of(excinfo):
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def tag_set(**tags):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(s3, bucket, key, **kwargs):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, **kwargs)["TagSet"]}


def test_object_tags_round_trip_and_go(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="team=backup&tier=cold%20storage")
    assert tags_of(s3, bucket, "k") == {"team": "backup", "tier": "cold storage"}
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(owner="ops"))
    assert tags_of(s3, bucket, "k") == {"owner": "ops"}
    # Tags are metadata: the body and ETag stay.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert tags_of(s3, bucket, "k") == {}
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert error_of(e) == ("NoSuchKey", 404)


def test_copy_keeps_or_replaces_tags_and_multipart_sets_them(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    s3.copy_object(Bucket=bucket, Key="kept", CopySource={"Bucket": bucket, "Key": "src"})
    assert tags_of(s3, bucket, "kept") == {"a": "1"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="b=2")
    assert tags_of(s3, bucket, "replaced") == {"b": "2"}
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu", Tagging="c=3")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=os.urandom(100))["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert tags_of(s3, bucket, "mpu") == {"c": "3"}


def test_each_version_has_its_own_tags(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old", Tagging="v=old")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"new", Tagging="v=new")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=old, Tagging=tag_set(v="changed"))
    assert put["VersionId"] == old
    assert tags_of(s3, bucket, "k", VersionId=old) == {"v": "changed"}
    got = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert got["VersionId"] == new and got["TagSet"] == [{"Key": "v", "Value": "new"}]
    missing = "0" * 12 + "00000000000000ff" + "00000000"
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=missing, Tagging=tag_set(v="x"))
    assert error_of(e) == ("NoSuchVersion", 404)


def test_tag_limits_are_s3s(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    eleven = {f"k{i}": "v" for i in range(11)}
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**eleven))
    assert error_of(e) == ("BadRequest", 400)
    for bad in ({"k" * 129: "v"}, {"k": "v" * 257}, {"aws:reserved": "v"}):
        with pytest.raises(ClientError) as e:
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**bad))
        assert error_of(e) == ("InvalidTag", 400), bad
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [
            {"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    assert error_of(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11)))
    assert error_of(e) == ("BadRequest", 400)
    # At the limit is fine: 10 on an object, keys and values at their longest.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**{f"k{i}": "v" for i in range(10)}))
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**{"k" * 128: "v" * 256}))


def test_bucket_tags(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NoSuchTagSet", 404)
    many = {f"k{i}": str(i) for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(**many))
    got = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert got == many
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(**{f"k{i}": "v" for i in range(51)}))
    assert error_of(e) == ("BadRequest", 400)
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NoSuchTagSet", 404)
