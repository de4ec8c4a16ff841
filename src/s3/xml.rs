//! Writing S3 XML responses and reading the few XML bodies S3 accepts.
//!
//! Responses are small and flat, so a writer that escapes text and tracks
//! nothing else is enough; request bodies are parsed with quick-xml.

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            out: String::from(XML_DECLARATION),
        }
    }

    /// Opens the root element with the S3 namespace.
    pub fn open_root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NAMESPACE);
        self.out.push_str("\">");
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>` with `text` escaped.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Escaped text inside the open element.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 text; S3 keys may
            // hold them, so write them as character references.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// A request body that is not well-formed XML.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedXml;

/// The text of the first `<LocationConstraint>` in a CreateBucket body, if
/// any.
pub fn location_constraint(body: &[u8]) -> Result<Option<String>, MalformedXml> {
    use quick_xml::events::Event;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut in_constraint = false;
    let mut found = None;
    let mut depth = 0usize;
    let mut saw_root = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                saw_root = true;
                in_constraint = e.local_name().as_ref() == b"LocationConstraint";
            }
            Ok(Event::Empty(_)) => saw_root = true,
            Ok(Event::End(_)) => {
                depth = depth.checked_sub(1).ok_or(MalformedXml)?;
                in_constraint = false;
            }
            Ok(Event::Text(t)) if in_constraint => {
                let text = t.unescape().map_err(|_| MalformedXml)?;
                found = Some(text.trim().to_string());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(MalformedXml),
        }
    }
    if depth != 0 || !saw_root {
        return Err(MalformedXml);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        let mut xml = XmlWriter::new();
        xml.leaf("Key", "a<b>&\"c'\u{1}");
        assert!(xml
            .finish()
            .ends_with("<Key>a&lt;b&gt;&amp;&quot;c&apos;&#x1;</Key>"));
    }

    #[test]
    fn reads_location_constraint() {
        let body = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(location_constraint(body), Ok(Some("eu-west-1".into())));
        assert_eq!(location_constraint(b""), Ok(None));
        assert_eq!(
            location_constraint(b"<CreateBucketConfiguration/>"),
            Ok(None)
        );
        assert!(location_constraint(b"<a><b></a>").is_err());
        assert!(location_constraint(b"<unclosed>").is_err());
    }
}
