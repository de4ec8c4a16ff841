//! Tag sets: the `<Tagging>` document and the `x-amz-tagging` header, with
//! S3's limits (10 tags on an object, 50 on a bucket; keys 1–128
//! characters, values up to 256; no key twice; no `aws:` prefix).

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use super::error::S3Error;
use super::xml::{self, XmlEvent, XmlWriter};
use crate::limits::{TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX};

/// Tags, by key.
pub type Tags = BTreeMap<String, String>;

/// The tags of a `<Tagging><TagSet><Tag><Key>…</Key><Value>…</Value></Tag>…`
/// document, checked against `tags_max`.
pub fn parse_tagging(body: &[u8], tags_max: usize) -> Result<Tags, S3Error> {
    const ROOT: &[u8] = b"Tagging";
    const TAG: [&[u8]; 3] = [ROOT, b"TagSet", b"Tag"];
    let mut pairs: Vec<(Option<String>, String)> = Vec::new();
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &TAG) => pairs.push((None, String::new())),
            XmlEvent::Text(path, text) if path.len() == 4 && xml::path_is(&path[..3], &TAG) => {
                let pair = pairs.last_mut().ok_or(xml::MalformedXml)?;
                match path[3].as_slice() {
                    b"Key" => pair.0 = Some(text),
                    b"Value" => pair.1 = text,
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    let pairs = pairs
        .into_iter()
        .map(|(key, value)| key.map(|key| (key, value)).ok_or(S3Error::MalformedXml))
        .collect::<Result<Vec<_>, _>>()?;
    checked(pairs, tags_max)
}

/// The tags of an `x-amz-tagging` header: a URL-encoded query string.
pub fn parse_header(header: &str, tags_max: usize) -> Result<Tags, S3Error> {
    let decode = |text: &str| {
        percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid_tag("The x-amz-tagging header is not valid URL encoding"))
    };
    let pairs = header
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode(key)?, decode(value)?))
        })
        .collect::<Result<Vec<_>, S3Error>>()?;
    checked(pairs, tags_max)
}

/// Writes `<Tagging><TagSet>…</TagSet></Tagging>`.
pub fn write_tagging(out: &mut XmlWriter, tags: &Tags) {
    out.open_root("Tagging");
    out.open("TagSet");
    for (key, value) in tags {
        out.open("Tag");
        out.leaf("Key", key);
        out.leaf("Value", value);
        out.close("Tag");
    }
    out.close("TagSet");
    out.close("Tagging");
}

fn checked(pairs: Vec<(String, String)>, tags_max: usize) -> Result<Tags, S3Error> {
    if pairs.len() > tags_max {
        return Err(S3Error::BadRequest {
            message: format!(
                "A tag set holds at most {tags_max} tags; this one has {}",
                pairs.len()
            ),
        });
    }
    let mut tags = Tags::new();
    for (key, value) in pairs {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > TAG_KEY_CHARS_MAX {
            return Err(invalid_tag("A tag key must be 1 to 128 characters long"));
        }
        if value.chars().count() > TAG_VALUE_CHARS_MAX {
            return Err(invalid_tag(
                "A tag value must be at most 256 characters long",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_tag("Tag keys starting with aws: are reserved"));
        }
        if tags.insert(key, value).is_some() {
            return Err(invalid_tag(
                "A tag set cannot hold two tags with the same key",
            ));
        }
    }
    Ok(tags)
}

fn invalid_tag(message: &str) -> S3Error {
    S3Error::InvalidTag {
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(tags: &[(&str, &str)]) -> String {
        let inner: String = tags
            .iter()
            .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
            .collect();
        format!("<Tagging><TagSet>{inner}</TagSet></Tagging>")
    }

    #[test]
    fn documents_and_headers_give_the_same_tags() {
        let tags = parse_tagging(doc(&[("team", "backup"), ("tier", "")]).as_bytes(), 10).unwrap();
        assert_eq!(tags.get("team").map(String::as_str), Some("backup"));
        assert_eq!(tags.get("tier").map(String::as_str), Some(""));
        assert_eq!(parse_header("team=backup&tier=", 10).unwrap(), tags);
        let spaced = parse_header("a%20b=c+d", 10).unwrap();
        assert_eq!(spaced.get("a b").map(String::as_str), Some("c d"));
        assert!(parse_tagging(b"<Tagging><TagSet/></Tagging>", 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn s3_limits_hold() {
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let pairs: Vec<(&str, &str)> = eleven
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(matches!(
            parse_tagging(doc(&pairs).as_bytes(), 10),
            Err(S3Error::BadRequest { .. })
        ));
        assert!(parse_tagging(doc(&pairs).as_bytes(), 50).is_ok());
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        for bad in [
            doc(&[(&long_key, "v")]),
            doc(&[("k", &long_value)]),
            doc(&[("a", "1"), ("a", "2")]),
            doc(&[("aws:x", "1")]),
        ] {
            assert!(
                matches!(
                    parse_tagging(bad.as_bytes(), 10),
                    Err(S3Error::InvalidTag { .. })
                ),
                "{bad}"
            );
        }
        assert!(parse_tagging(
            b"<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
            10
        )
        .is_err());
        assert!(parse_tagging(b"<Other/>", 10).is_err());
        assert!(parse_tagging(doc(&[("", "1")]).as_bytes(), 10).is_err());
        assert!(matches!(
            parse_header("=1", 10),
            Err(S3Error::InvalidTag { .. })
        ));
    }
}
