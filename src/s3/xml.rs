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

    /// Opens an element with attributes (values escaped).
    pub fn open_with_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (attr, value) in attrs {
            self.out.push(' ');
            self.out.push_str(attr);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
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

/// What [`walk`] reports: an element opening, or text inside one, each
/// with the local names of the elements from the root down to it.
pub enum XmlEvent<'a> {
    Open(&'a [Vec<u8>]),
    Text(&'a [Vec<u8>], String),
}

/// Walks a small request document whose root element is `root`, calling
/// `visit` for every element and text node. Namespaces are ignored (S3
/// documents may or may not carry theirs). An empty document, another
/// root, or unbalanced tags are [`MalformedXml`].
pub fn walk(
    body: &[u8],
    root: &[u8],
    mut visit: impl FnMut(XmlEvent<'_>) -> Result<(), MalformedXml>,
) -> Result<(), MalformedXml> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut saw_root = false;
    loop {
        match reader.read_event().map_err(|_| MalformedXml)? {
            event @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(e) | Event::Empty(e)) = &event else {
                    unreachable!("matched above")
                };
                let name = e.local_name().as_ref().to_vec();
                if path.is_empty() {
                    if saw_root || name != root {
                        return Err(MalformedXml);
                    }
                    saw_root = true;
                }
                path.push(name);
                visit(XmlEvent::Open(&path))?;
                if matches!(event, Event::Empty(_)) {
                    path.pop();
                }
            }
            Event::End(_) => {
                path.pop().ok_or(MalformedXml)?;
            }
            Event::Text(t) if !path.is_empty() => {
                let text = t.unescape().map_err(|_| MalformedXml)?.into_owned();
                visit(XmlEvent::Text(&path, text))?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root || !path.is_empty() {
        return Err(MalformedXml);
    }
    Ok(())
}

/// Whether `path` is exactly these element names.
pub fn path_is(path: &[Vec<u8>], names: &[&[u8]]) -> bool {
    path.len() == names.len() && path.iter().zip(names).all(|(a, b)| a.as_slice() == *b)
}

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
    fn walk_reports_paths_and_refuses_bad_documents() {
        let body = br#"<?xml version="1.0"?><R xmlns="x"><A><B>one &amp; two</B></A><C/></R>"#;
        let mut seen = Vec::new();
        walk(body, b"R", |event| {
            match event {
                XmlEvent::Open(path) => seen.push(format!("open {}", path.len())),
                XmlEvent::Text(path, text) => {
                    assert!(path_is(path, &[b"R", b"A", b"B"]));
                    seen.push(text);
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["open 1", "open 2", "open 3", "one & two", "open 2"]);
        for bad in [&b""[..], b"<R>", b"<Q></Q>", b"<R></R><R></R>", b"<R></Q>"] {
            assert_eq!(walk(bad, b"R", |_| Ok(())), Err(MalformedXml), "{bad:?}");
        }
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
