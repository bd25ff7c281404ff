//! Stored value format. A cache entry is an envelope `v`, a count, the Redis server
//! incarnation (`run_id`) it was stored on and the versions of its tags (each a length byte
//! and its bytes), then the body: one format byte and the body, LZ4-compressed when it is
//! larger than the threshold. The versions are those of the entry's tags when its body was
//! computed; a read serves the entry only on the same server incarnation and while they
//! are still current.
//! Transparent to clients.

use bytes::Bytes;

const RAW: u8 = b'r';
const LZ4: u8 = b'z';
const ENTRY: u8 = b'v';

/// Errors decoding a stored value.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Empty or unknown format.
    #[error("stored value has an unknown format")]
    Format,
    /// The compressed payload is corrupt.
    #[error("stored value does not decompress: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
}

/// Encodes a body, compressing it when it is longer than `threshold` bytes and
/// compression actually makes it smaller.
pub fn encode(body: &[u8], threshold: usize) -> Vec<u8> {
    if body.len() > threshold {
        let packed = lz4_flex::compress_prepend_size(body);
        if packed.len() < body.len() {
            let mut out = Vec::with_capacity(packed.len() + 1);
            out.push(LZ4);
            out.extend_from_slice(&packed);
            return out;
        }
    }
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(RAW);
    out.extend_from_slice(body);
    out
}

/// Decodes a stored value back into the body.
pub fn decode(stored: &[u8]) -> Result<Bytes, CodecError> {
    match stored.split_first() {
        Some((&RAW, body)) => Ok(Bytes::copy_from_slice(body)),
        Some((&LZ4, packed)) => Ok(Bytes::from(lz4_flex::decompress_size_prepended(packed)?)),
        _ => Err(CodecError::Format),
    }
}

/// A cache entry: where it was stored, its tag versions at computation time and its
/// encoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The `run_id` of the Redis server the entry was stored on.
    pub server: &'a str,
    /// The version of each tag (in the order of the route's tags) the body was computed at.
    pub versions: Vec<&'a str>,
    /// The body as [`encode`] wrote it.
    pub body: &'a [u8],
}

/// Encodes a cache entry: the server, the tag versions, then the body (see [`encode`]).
/// Each is at most 255 bytes, and there are at most 254 versions.
pub(crate) fn encode_entry(
    server: &str,
    versions: &[String],
    body: &[u8],
    threshold: usize,
) -> Vec<u8> {
    let encoded = encode(body, threshold);
    let fields_len = server.len() + 1 + versions.iter().map(|v| v.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(2 + fields_len + encoded.len());
    out.push(ENTRY);
    // The count covers the server and the versions.
    out.push(u8::try_from(versions.len() + 1).expect("at most 254 tags"));
    push_field(&mut out, server);
    for v in versions {
        push_field(&mut out, v);
    }
    out.extend_from_slice(&encoded);
    out
}

/// Appends one entry field: its length byte, then its bytes.
fn push_field(out: &mut Vec<u8>, v: &str) {
    out.push(u8::try_from(v.len()).expect("a field of at most 255 bytes"));
    out.extend_from_slice(v.as_bytes());
}

/// Splits one entry field (length byte and UTF-8 bytes) off the front of `rest`.
fn read_field(rest: &[u8]) -> Result<(&str, &[u8]), CodecError> {
    let (&len, tail) = rest.split_first().ok_or(CodecError::Format)?;
    if tail.len() < len as usize {
        return Err(CodecError::Format);
    }
    let (v, tail) = tail.split_at(len as usize);
    Ok((
        std::str::from_utf8(v).map_err(|_| CodecError::Format)?,
        tail,
    ))
}

/// Splits a stored cache entry into its versions and encoded body. A value without the
/// envelope (written by an older build) or a truncated one is a [`CodecError::Format`].
pub fn decode_entry(stored: &[u8]) -> Result<Entry<'_>, CodecError> {
    let (&ENTRY, rest) = stored.split_first().ok_or(CodecError::Format)? else {
        return Err(CodecError::Format);
    };
    // The count covers the server and the versions, so it is at least 1.
    let (&n, rest) = rest.split_first().ok_or(CodecError::Format)?;
    if n == 0 {
        return Err(CodecError::Format);
    }
    let (server, mut rest) = read_field(rest)?;
    let mut versions = Vec::with_capacity(n as usize - 1);
    for _ in 1..n {
        let (v, tail) = read_field(rest)?;
        versions.push(v);
        rest = tail;
    }
    Ok(Entry {
        server,
        versions,
        body: rest,
    })
}

/// Whether a stored value is compressed.
pub fn is_compressed(stored: &[u8]) -> bool {
    stored.first() == Some(&LZ4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_raw_and_large_ones_compress() {
        let small = br#"{"a":1}"#;
        let enc = encode(small, 1024);
        assert!(!is_compressed(&enc));
        assert_eq!(decode(&enc).unwrap().as_ref(), small);

        let large = serde_json::to_vec(&vec!["ward membership"; 500]).unwrap();
        let enc = encode(&large, 1024);
        assert!(is_compressed(&enc));
        assert!(enc.len() < large.len() / 4);
        assert_eq!(decode(&enc).unwrap().as_ref(), large.as_slice());
    }

    #[test]
    fn entries_carry_their_versions() {
        let versions = vec!["3f2a".to_string(), "b7".to_string()];
        let enc = encode_entry("run1", &versions, br#"{"id":1}"#, 1024);
        let e = decode_entry(&enc).unwrap();
        assert_eq!(e.server, "run1");
        assert_eq!(e.versions, ["3f2a", "b7"]);
        assert_eq!(decode(e.body).unwrap().as_ref(), br#"{"id":1}"#);
        // An entry of the old format, or a truncated one, is not an entry.
        assert!(decode_entry(&encode(b"{}", 1024)).is_err());
        assert!(decode_entry(&enc[..5]).is_err());
        assert!(decode_entry(b"v").is_err());
        assert!(decode_entry(b"v\x00r{}").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(b"x123").is_err());
        assert!(decode(b"z\x10\x00\x00\x00abc").is_err());
    }
}
