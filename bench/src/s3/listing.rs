//! One ListObjectsV2 page, read for what a listing needs: how many keys
//! it holds, whether more follow, and the token that asks for them. A
//! plain scan of the XML (the tags are fixed by S3), so a 1,000-key page
//! costs no parser. Pure.

/// What one page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `<Key>` elements: objects listed on this page.
    pub keys: u64,
    /// `<IsTruncated>true</IsTruncated>`: another page follows.
    pub truncated: bool,
    /// `<NextContinuationToken>`, unescaped.
    pub next_token: Option<String>,
}

/// Reads a page; the error says what is missing.
pub fn parse(body: &[u8]) -> Result<Page, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the page is not UTF-8".to_string())?;
    if !text.contains("<ListBucketResult") {
        return Err("no <ListBucketResult> in the page".into());
    }
    let truncated = match element(text, "IsTruncated") {
        Some("true") => true,
        Some("false") | None => false,
        Some(other) => return Err(format!("<IsTruncated> is {other:?}")),
    };
    let next_token = element(text, "NextContinuationToken").map(unescape);
    if truncated && next_token.is_none() {
        return Err("a truncated page without <NextContinuationToken>".into());
    }
    Ok(Page {
        keys: text.matches("<Key>").count() as u64,
        truncated,
        next_token,
    })
}

/// The text of the first `<tag>…</tag>`, trimmed.
fn element<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..start + len].trim())
}

/// XML's five predefined entities (a token may hold `&`, `<`, …).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], truncated: bool, token: Option<&str>) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>",
        );
        xml += &format!("<KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>", keys.len());
        xml += &format!("<IsTruncated>{truncated}</IsTruncated>");
        if let Some(t) = token {
            xml += &format!("<NextContinuationToken>{t}</NextContinuationToken>");
        }
        for k in keys {
            xml += &format!("<Contents><Key>{k}</Key><Size>1</Size></Contents>");
        }
        xml + "</ListBucketResult>"
    }

    #[test]
    fn a_last_page_counts_its_keys() {
        let p = parse(page(&["p/1", "p/2", "p/3"], false, None).as_bytes()).unwrap();
        assert_eq!(
            p,
            Page {
                keys: 3,
                truncated: false,
                next_token: None
            }
        );
    }

    #[test]
    fn a_truncated_page_gives_its_token_unescaped() {
        let p = parse(page(&["p/1"], true, Some("a&amp;b&lt;c")).as_bytes()).unwrap();
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("a&b<c"));
    }

    #[test]
    fn an_empty_listing_has_no_keys() {
        let p = parse(page(&[], false, None).as_bytes()).unwrap();
        assert_eq!(p.keys, 0);
    }

    #[test]
    fn broken_pages_are_refused() {
        for (body, needle) in [
            (page(&["k"], true, None), "without"),
            (
                "<Error><Code>x</Code></Error>".to_string(),
                "ListBucketResult",
            ),
            (
                page(&[], false, None).replace(">false<", ">maybe<"),
                "IsTruncated",
            ),
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
