//! The `multipart/form-data` body of a browser upload (POST Object):
//! the fields before the `file` part, read whole and bounded, then the
//! file's bytes, streamed, up to the delimiter that ends them. Fields
//! after the file are ignored, as S3 does. Pure code: the handler
//! (`handlers/post.rs`) feeds it the body as it arrives.

use std::collections::BTreeMap;

/// Why a form could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// Not `multipart/form-data` with a boundary.
    NotAForm,
    /// The framing is broken (a part without headers, no `name`, ...).
    Malformed(&'static str),
    /// The body ended before a `file` part (or before its end).
    NoFile,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, FormError> {
    let mut params = content_type.split(';').map(str::trim);
    let kind = params.next().unwrap_or_default();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::NotAForm);
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or(FormError::NotAForm)
}

/// The fields before the file, and what the file part said of itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormHead {
    /// Field values by name as sent (S3 matches names case-insensitively:
    /// see [`FormHead::field`]), the last of a repeated name winning.
    pub fields: BTreeMap<String, String>,
    /// The file part's `filename`, for `${filename}` in the key.
    pub file_name: String,
    /// The file part's own `Content-Type`, if any.
    pub file_content_type: Option<String>,
}

impl FormHead {
    /// A field's value by case-insensitive name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the fields up to the `file` part's headers from `buffer`, the
/// start of the body. `Ok(None)`: more bytes are needed. `Ok(Some((head,
/// used)))`: the file's bytes start at `buffer[used..]`.
pub fn read_head(buffer: &[u8], boundary: &str) -> Result<Option<(FormHead, usize)>, FormError> {
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let Some(start) = find(buffer, first.as_bytes()) else {
        return Ok(None);
    };
    let mut at = start + first.len();
    let mut head = FormHead::default();
    loop {
        // After a delimiter: `--` ends the body, CRLF starts a part.
        let Some(rest) = buffer.get(at..at + 2) else {
            return Ok(None);
        };
        if rest == b"--" {
            return Err(FormError::NoFile);
        }
        if rest != b"\r\n" {
            return Err(FormError::Malformed(
                "a boundary not followed by a line end",
            ));
        }
        at += 2;
        let Some(headers_len) = find(&buffer[at..], b"\r\n\r\n") else {
            return Ok(None);
        };
        let part = part_headers(&buffer[at..at + headers_len])?;
        at += headers_len + 4;
        if part.name == "file" {
            head.file_name = part.file_name.unwrap_or_default();
            head.file_content_type = part.content_type;
            return Ok(Some((head, at)));
        }
        let Some(value_len) = find(&buffer[at..], delimiter.as_bytes()) else {
            return Ok(None);
        };
        let value = String::from_utf8(buffer[at..at + value_len].to_vec())
            .map_err(|_| FormError::Malformed("a field that is not UTF-8"))?;
        head.fields.insert(part.name, value);
        at += value_len + delimiter.len();
    }
}

struct PartHeaders {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
}

fn part_headers(block: &[u8]) -> Result<PartHeaders, FormError> {
    let text = std::str::from_utf8(block).map_err(|_| FormError::Malformed("part headers"))?;
    let mut part = PartHeaders {
        name: String::new(),
        file_name: None,
        content_type: None,
    };
    let mut named = false;
    for line in text.split("\r\n") {
        let Some((header, value)) = line.split_once(':') else {
            return Err(FormError::Malformed("a part header without a colon"));
        };
        if header.trim().eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.trim().to_string());
        } else if header.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((key, quoted)) = param.split_once('=') else {
                    continue;
                };
                let unquoted = quoted.trim().trim_matches('"').to_string();
                match key.trim() {
                    "name" => {
                        part.name = unquoted;
                        named = true;
                    }
                    "filename" => part.file_name = Some(unquoted),
                    _ => {}
                }
            }
        }
    }
    if !named {
        return Err(FormError::Malformed("a part without a name"));
    }
    Ok(part)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Streams the file's bytes out of the body that follows its headers,
/// holding back what could be the start of the closing delimiter.
#[derive(Debug)]
pub struct FileDecoder {
    delimiter: Vec<u8>,
    held: Vec<u8>,
    done: bool,
}

impl FileDecoder {
    pub fn new(boundary: &str) -> FileDecoder {
        FileDecoder {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            held: Vec::new(),
            done: false,
        }
    }

    /// Whether the file's end was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds body bytes; `out` gets the file's bytes in order. Bytes after
    /// the file's end (later fields, the epilogue) are dropped.
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.done {
            return;
        }
        // Only the held tail (shorter than the delimiter) is ever copied:
        // the rest of `input` goes out as it came.
        let mut joined;
        let data: &[u8] = if self.held.is_empty() {
            input
        } else {
            joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(input);
            &joined
        };
        if let Some(end) = find(data, &self.delimiter) {
            out(&data[..end]);
            self.done = true;
            return;
        }
        // Hold back the longest tail that is a prefix of the delimiter.
        let keep = (1..self.delimiter.len().min(data.len() + 1))
            .rev()
            .find(|&n| data.ends_with(&self.delimiter[..n]))
            .unwrap_or(0);
        out(&data[..data.len() - keep]);
        self.held = data[data.len() - keep..].to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in parts {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nx\r\n--XyZ--\r\n",
        );
        body
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").unwrap(),
            "XyZ"
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"").unwrap(),
            "a b"
        );
        assert_eq!(
            boundary("application/x-www-form-urlencoded"),
            Err(FormError::NotAForm)
        );
        assert_eq!(boundary("multipart/form-data"), Err(FormError::NotAForm));
    }

    #[test]
    fn fields_then_the_file_streamed_in_any_pieces() {
        // A file that holds CRLFs and the delimiter's beginnings (never the
        // whole of it: a sender picks a boundary its data lacks) comes out
        // whole, however the body is cut.
        let mut file = b"line\r\n--Xy not the end\r\n--X".repeat(3);
        file.extend_from_slice(b"\r\n--XyQ\r\n-");
        let body = form(
            &[("key", "dir/${filename}"), ("Content-Type", "text/plain")],
            &file,
        );
        for split in [1, 2, 7, 40, body.len()] {
            let mut buffered = Vec::new();
            let mut pieces = body.chunks(split);
            let (head, used) = loop {
                buffered.extend_from_slice(pieces.next().expect("the head fits"));
                if let Some(found) = read_head(&buffered, "XyZ").unwrap() {
                    break found;
                }
            };
            assert_eq!(head.field("KEY"), Some("dir/${filename}"));
            assert_eq!(head.file_name, "a.txt");
            assert_eq!(head.file_content_type.as_deref(), Some("text/plain"));
            let mut decoder = FileDecoder::new("XyZ");
            let mut got = Vec::new();
            decoder.feed(&buffered[used..], &mut |b| got.extend_from_slice(b));
            for piece in pieces {
                decoder.feed(piece, &mut |b| got.extend_from_slice(b));
            }
            assert!(decoder.is_done());
            assert_eq!(got, file, "split every {split} bytes");
        }
    }

    #[test]
    fn a_form_without_a_file_or_with_broken_parts_is_refused() {
        let no_file = b"--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--B--\r\n";
        assert_eq!(read_head(no_file, "B"), Err(FormError::NoFile));
        let nameless = b"--B\r\nContent-Disposition: form-data\r\n\r\nk\r\n--B--\r\n";
        assert!(matches!(
            read_head(nameless, "B"),
            Err(FormError::Malformed(_))
        ));
        assert_eq!(
            read_head(b"--B\r\nContent-Disp", "B"),
            Ok(None),
            "more to come"
        );
        let mut cut = FileDecoder::new("B");
        cut.feed(b"no end", &mut |_| {});
        assert!(!cut.is_done());
    }
}
