//! Stored value format: one tag byte, then the body, LZ4-compressed when it is larger
//! than the threshold. Transparent to clients.

use bytes::Bytes;

const RAW: u8 = b'r';
const LZ4: u8 = b'z';

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
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(b"x123").is_err());
        assert!(decode(b"z\x10\x00\x00\x00abc").is_err());
    }
}
