//! A bucket's CORS rules: reading and writing the configuration document,
//! and deciding which rule (if any) lets a browser origin make a request.
//! Pure code: the handlers (`handlers/cors.rs`) and the response path
//! (`s3/mod.rs`, which adds the headers to every answer a rule allows,
//! errors included) ask it.

use http::{HeaderMap, HeaderValue};
use shoal_proto::meta::{CorsConfiguration, CorsRule};

use super::error::S3Error;
use super::xml::{self, XmlEvent, XmlWriter};
use crate::limits::CORS_RULES_MAX;

/// Methods a rule may allow (S3's list).
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// Longest rule id S3 takes.
const RULE_ID_CHARS_MAX: usize = 255;

/// Whether `pattern`, with at most one `*` standing for any run of
/// characters (none included), matches `text`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail)
        }
    }
}

/// What a browser asks to do: from `origin`, with `method`, sending
/// `headers` (lower-case; a preflight's `Access-Control-Request-Headers`).
pub struct CorsAsk<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    pub headers: &'a [String],
}

/// The first rule that allows `ask`, as S3 picks: rules in order, an
/// origin matched with its wildcard, the method exactly, and every
/// requested header by some allowed header (case-insensitively).
pub fn find_rule<'c>(cors: &'c CorsConfiguration, ask: &CorsAsk<'_>) -> Option<&'c CorsRule> {
    cors.rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, ask.origin))
            && rule.allowed_methods.iter().any(|m| m == ask.method)
            && ask.headers.iter().all(|asked| {
                rule.allowed_headers
                    .iter()
                    .any(|allowed| wildcard_match(&allowed.to_ascii_lowercase(), asked))
            })
    })
}

/// The `Access-Control-*` headers that tell the browser `rule` allowed
/// `ask`; `preflight` adds the allowed request headers and the cache time.
pub fn allow(
    headers: &mut HeaderMap,
    rule: &CorsRule,
    ask: &CorsAsk<'_>,
    preflight: bool,
) -> Result<(), S3Error> {
    let value = |text: &str| HeaderValue::from_str(text).map_err(S3Error::internal);
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let origin = if any_origin { "*" } else { ask.origin };
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, value(origin)?);
    // A response for one origin may carry credentials (cookies play no
    // part in S3, but a page may send its own auth headers).
    if !any_origin {
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        value(&rule.allowed_methods.join(", "))?,
    );
    if !rule.expose_headers.is_empty() {
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            value(&rule.expose_headers.join(", "))?,
        );
    }
    if preflight {
        if !ask.headers.is_empty() {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                value(&ask.headers.join(", "))?,
            );
        }
        if let Some(seconds) = rule.max_age_seconds {
            headers.insert(
                http::header::ACCESS_CONTROL_MAX_AGE,
                value(&seconds.to_string())?,
            );
        }
    }
    vary(headers);
    Ok(())
}

/// Marks a response of a bucket with CORS rules as depending on the
/// request's origin, so no cache hands one origin's answer to another.
pub fn vary(headers: &mut HeaderMap) {
    headers.insert(
        http::header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
}

/// The header names a preflight's `Access-Control-Request-Headers` lists,
/// lower-case.
pub fn requested_headers(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Reads and checks a `CORSConfiguration` document.
pub fn parse_configuration(body: &[u8]) -> Result<CorsConfiguration, S3Error> {
    const ROOT: &[u8] = b"CORSConfiguration";
    let mut rules: Vec<CorsRule> = Vec::new();
    let mut max_age: Vec<Option<String>> = Vec::new();
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, &[ROOT, b"CORSRule"]) => {
                rules.push(CorsRule::default());
                max_age.push(None);
            }
            XmlEvent::Text(path, text) if path.len() == 3 => {
                let rule = rules.last_mut().ok_or(xml::MalformedXml)?;
                let text = text.trim().to_string();
                match path[2].as_slice() {
                    b"ID" => rule.id = text,
                    b"AllowedOrigin" => rule.allowed_origins.push(text),
                    b"AllowedMethod" => rule.allowed_methods.push(text),
                    b"AllowedHeader" => rule.allowed_headers.push(text),
                    b"ExposeHeader" => rule.expose_headers.push(text),
                    b"MaxAgeSeconds" => *max_age.last_mut().ok_or(xml::MalformedXml)? = Some(text),
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if rules.is_empty() || rules.len() > CORS_RULES_MAX {
        return Err(S3Error::MalformedXml);
    }
    for (rule, max_age) in rules.iter_mut().zip(max_age) {
        if let Some(text) = max_age {
            rule.max_age_seconds = Some(text.parse().map_err(|_| S3Error::MalformedXml)?);
        }
        check_rule(rule)?;
    }
    Ok(CorsConfiguration { rules })
}

/// S3's checks of one rule: an origin and a method at least, known
/// methods, and at most one wildcard in each origin and allowed header.
fn check_rule(rule: &CorsRule) -> Result<(), S3Error> {
    if rule.allowed_origins.is_empty()
        || rule.allowed_methods.is_empty()
        || rule.id.chars().count() > RULE_ID_CHARS_MAX
    {
        return Err(S3Error::MalformedXml);
    }
    if let Some(method) = rule
        .allowed_methods
        .iter()
        .find(|m| !METHODS.contains(&m.as_str()))
    {
        return Err(S3Error::InvalidRequest {
            message: format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            ),
        });
    }
    let two_wildcards = |patterns: &[String]| {
        patterns
            .iter()
            .find(|p| p.matches('*').count() > 1)
            .cloned()
    };
    if let Some(origin) = two_wildcards(&rule.allowed_origins) {
        return Err(S3Error::InvalidRequest {
            message: format!("AllowedOrigin \"{origin}\" can not have more than one wildcard."),
        });
    }
    if let Some(header) = two_wildcards(&rule.allowed_headers) {
        return Err(S3Error::InvalidRequest {
            message: format!("AllowedHeader \"{header}\" can not have more than one wildcard."),
        });
    }
    Ok(())
}

/// The configuration as GetBucketCors returns it.
pub fn write_configuration(cors: &CorsConfiguration) -> String {
    let mut out = XmlWriter::new();
    out.open_root("CORSConfiguration");
    for rule in &cors.rules {
        out.open("CORSRule");
        if !rule.id.is_empty() {
            out.leaf("ID", &rule.id);
        }
        let lists = [
            ("AllowedHeader", &rule.allowed_headers),
            ("AllowedMethod", &rule.allowed_methods),
            ("AllowedOrigin", &rule.allowed_origins),
            ("ExposeHeader", &rule.expose_headers),
        ];
        for (name, values) in lists {
            for value in values {
                out.leaf(name, value);
            }
        }
        if let Some(seconds) = rule.max_age_seconds {
            out.leaf("MaxAgeSeconds", &seconds.to_string());
        }
        out.close("CORSRule");
    }
    out.close("CORSConfiguration");
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: owned(origins),
            allowed_methods: owned(methods),
            allowed_headers: owned(headers),
            ..Default::default()
        }
    }

    fn ask<'a>(origin: &'a str, method: &'a str, headers: &'a [String]) -> CorsAsk<'a> {
        CorsAsk {
            origin,
            method,
            headers,
        }
    }

    #[test]
    fn one_wildcard_stands_for_any_run_of_characters() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("start*end", "startend"));
        assert!(wildcard_match("start*end", "start12end"));
        assert!(!wildcard_match("start*end", "0start12end"));
        assert!(
            !wildcard_match("ab*ba", "aba"),
            "head and tail may not overlap"
        );
        assert!(wildcard_match("*.example.com", "https://app.example.com"));
        assert!(!wildcard_match("https://a.com", "https://a.com.evil"));
    }

    #[test]
    fn the_first_rule_allowing_origin_method_and_every_header_wins() {
        let cors = CorsConfiguration {
            rules: vec![
                rule(&["https://app.example"], &["GET"], &[]),
                rule(
                    &["https://*.example"],
                    &["GET", "PUT"],
                    &["x-amz-*", "Content-Type"],
                ),
            ],
        };
        let none: Vec<String> = Vec::new();
        let found = |ask: &CorsAsk| find_rule(&cors, ask).map(|r| r.allowed_methods.len());
        assert_eq!(found(&ask("https://app.example", "GET", &none)), Some(1));
        assert_eq!(found(&ask("https://app.example", "PUT", &none)), Some(2));
        let headers = requested_headers(Some("X-Amz-Date, content-type"));
        assert_eq!(found(&ask("https://app.example", "PUT", &headers)), Some(2));
        let headers = requested_headers(Some("authorization"));
        assert_eq!(found(&ask("https://app.example", "PUT", &headers)), None);
        assert_eq!(found(&ask("https://other.site", "GET", &none)), None);
        assert_eq!(found(&ask("https://app.example", "DELETE", &none)), None);
    }

    #[test]
    fn a_configuration_reads_back_as_written_and_bad_rules_are_refused() {
        let body = b"<CORSConfiguration><CORSRule><ID>web</ID>\
            <AllowedOrigin>https://*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
            <AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>\
            <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>\
            </CORSConfiguration>";
        let cors = parse_configuration(body).unwrap();
        assert_eq!(cors.rules[0].max_age_seconds, Some(600));
        assert_eq!(cors.rules[0].allowed_methods, ["GET", "PUT"]);
        assert_eq!(
            parse_configuration(write_configuration(&cors).as_bytes()).unwrap(),
            cors
        );

        let code = |body: &str| parse_configuration(body.as_bytes()).unwrap_err().code();
        let one = |inner: &str| {
            format!("<CORSConfiguration><CORSRule>{inner}</CORSRule></CORSConfiguration>")
        };
        assert_eq!(
            code("<CORSConfiguration></CORSConfiguration>"),
            "MalformedXML"
        );
        assert_eq!(
            code(&one("<AllowedMethod>GET</AllowedMethod>")),
            "MalformedXML"
        );
        assert_eq!(
            code(&one(
                "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(&one(
                "<AllowedOrigin>*a*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            )),
            "InvalidRequest"
        );
        assert_eq!(
            code(&one("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds>")),
            "MalformedXML"
        );
    }
}
