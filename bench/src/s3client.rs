//! A minimal S3 client: one blocking HTTP/1.1 keep-alive connection, SigV4
//! header auth with `UNSIGNED-PAYLOAD`. Enough to drive PUT load without
//! the client becoming the bottleneck.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub struct Target {
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl Target {
    pub fn new(
        endpoint: &str,
        access_key: String,
        secret_key: String,
        region: String,
    ) -> Result<Self, String> {
        let host = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| format!("endpoint {endpoint:?} must start with http://"))?
            .trim_end_matches('/')
            .to_string();
        Ok(Target {
            host,
            access_key,
            secret_key,
            region,
        })
    }

    pub fn connect(&self) -> io::Result<Connection<'_>> {
        let stream = TcpStream::connect(&self.host)?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Connection {
            target: self,
            stream,
            reader,
        })
    }

    fn authorization(&self, method: &str, path: &str, amz_date: &str) -> String {
        let date = &amz_date[..8];
        let canonical = format!(
            "{method}\n{path}\n\nhost:{}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
            self.host
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
            self.access_key,
            hex::encode(hmac(&key, to_sign.as_bytes()))
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub struct Connection<'a> {
    target: &'a Target,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection<'_> {
    /// Sends one request (path must be URL-safe ASCII) and returns the
    /// status, having read the whole response.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<u16> {
        let now = OffsetDateTime::now_utc();
        let amz_date = now
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .map_err(io::Error::other)?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nx-amz-date: {amz_date}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
            self.target.host,
            self.target.authorization(method, path, &amz_date),
            body.len()
        );
        self.stream.write_all(head.as_bytes())?;
        for piece in body.chunks(1 << 20) {
            self.stream.write_all(piece)?;
        }
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<u16> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut content_length = 0u64;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        io::copy(
            &mut (&mut self.reader).take(content_length),
            &mut io::sink(),
        )?;
        Ok(status)
    }
}
