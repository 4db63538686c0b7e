//! A compact byte encoding of a sketch, for files, sockets and collective operations that carry
//! bytes rather than `u64` arrays.
//!
//! ```text
//!  offset  size      field (all little-endian)
//!  0       8         magic "NPMKSK01"
//!  8       4         STATE_WORDS (65536): the state length this encoding belongs to
//!  12      4         m: number of non-zero words
//!  16      10 * m    m entries, word index ascending: u16 index, u64 count (non-zero)
//!  16+10m  8         FNV-1a 64 of every byte before it
//! ```
//!
//! Zero words are left out, so a sketch of one Gaussian matrix takes a few kilobytes instead
//! of the 512 KiB of its state. Decoding rejects anything else: wrong magic or length, indices
//! out of order, a zero count, a checksum mismatch, or a state that [`Sketch::check`] rejects.

use npmk::layout::STATE_WORDS;
use npmk::Sketch;

use crate::error::{Error, Result, NPMK_ERR_BAD_FORMAT};

const MAGIC: &[u8; 8] = b"NPMKSK01";
const HEADER: usize = 16;
const ENTRY: usize = 10;
const TRAILER: usize = 8;

/// FNV-1a, 64-bit: cheap and enough to catch truncation and bit rot (not an adversary).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The encoded length of `sketch`, in bytes.
pub(crate) fn encoded_len(sketch: &Sketch) -> usize {
    let nonzero = sketch.words().iter().filter(|&&w| w != 0).count();
    HEADER + ENTRY * nonzero + TRAILER
}

/// Encodes `sketch` into `out`, which must be exactly [`encoded_len`] bytes long.
pub(crate) fn encode_into(sketch: &Sketch, out: &mut [u8]) {
    let words = sketch.words();
    let nonzero = (out.len() - HEADER - TRAILER) / ENTRY;
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&(STATE_WORDS as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(nonzero as u32).to_le_bytes());
    let mut at = HEADER;
    for (index, &count) in words.iter().enumerate().filter(|(_, &w)| w != 0) {
        out[at..at + 2].copy_from_slice(&(index as u16).to_le_bytes());
        out[at + 2..at + ENTRY].copy_from_slice(&count.to_le_bytes());
        at += ENTRY;
    }
    let sum = fnv1a(&out[..at]);
    out[at..at + TRAILER].copy_from_slice(&sum.to_le_bytes());
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(NPMK_ERR_BAD_FORMAT, message)
}

/// Decodes bytes written by [`encode_into`] into `sketch` (which is overwritten).
pub(crate) fn decode_into(bytes: &[u8], sketch: &mut Sketch) -> Result<()> {
    // Header: magic, state length, entry count consistent with the byte length.
    if bytes.len() < HEADER + TRAILER || &bytes[..8] != MAGIC {
        return Err(bad("not an npmk sketch encoding (magic \"NPMKSK01\" missing)"));
    }
    let words = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    if words != STATE_WORDS {
        return Err(bad(format!("encoded state has {words} words, this build uses {STATE_WORDS}")));
    }
    let m = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let body = bytes.len() - HEADER - TRAILER;
    if m > STATE_WORDS || body != m * ENTRY {
        return Err(bad(format!(
            "length {} does not match {m} entries (expected {} bytes)",
            bytes.len(),
            HEADER + m.min(STATE_WORDS) * ENTRY + TRAILER
        )));
    }

    // Checksum before trusting any entry.
    let end = HEADER + body;
    let stored = u64::from_le_bytes(bytes[end..].try_into().unwrap());
    if fnv1a(&bytes[..end]) != stored {
        return Err(bad("checksum mismatch: the bytes were altered or truncated"));
    }

    // Entries: strictly ascending indices, non-zero counts.
    sketch.clear();
    let state = sketch.words_mut();
    let mut previous: Option<usize> = None;
    for entry in bytes[HEADER..end].chunks_exact(ENTRY) {
        let index = u16::from_le_bytes([entry[0], entry[1]]) as usize;
        let count = u64::from_le_bytes(entry[2..].try_into().unwrap());
        if previous.is_some_and(|p| index <= p) || count == 0 {
            sketch.clear();
            return Err(bad("entries out of order or with a zero count"));
        }
        state[index] = count;
        previous = Some(index);
    }
    sketch.check().map_err(|e| {
        sketch.clear();
        bad(format!("decoded state is inconsistent: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Box<Sketch> {
        let mut s = Sketch::new_boxed();
        let v: Vec<f32> = (1..5000).map(|i| ((i as f32) * 0.37).sin() * 0.02).collect();
        s.push_f32(&v);
        s.push_f32(&[0.0, f32::NAN, f32::INFINITY]);
        s
    }

    fn encode(s: &Sketch) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(s)];
        encode_into(s, &mut out);
        out
    }

    #[test]
    fn round_trip_is_exact_and_compact() {
        let s = sample();
        let bytes = encode(&s);
        assert!(bytes.len() < 60_000, "{}", bytes.len());
        let mut back = Sketch::new_boxed();
        back.push_f32(&[1.0]);
        decode_into(&bytes, &mut back).unwrap();
        assert!(*back == *s);
        // The empty sketch encodes to header and trailer only.
        let empty = Sketch::new_boxed();
        assert_eq!(encode(&empty).len(), HEADER + TRAILER);
        decode_into(&encode(&empty), &mut back).unwrap();
        assert!(*back == *empty);
    }

    #[test]
    fn every_corruption_is_rejected() {
        let bytes = encode(&sample());
        let mut target = Sketch::new_boxed();
        let mut reject = |b: &[u8], what: &str| {
            let e = decode_into(b, &mut target).unwrap_err();
            assert_eq!(e.code, NPMK_ERR_BAD_FORMAT, "{what}");
            assert!(e.message.contains(what), "{what}: {}", e.message);
        };
        reject(&bytes[..bytes.len() - 1], "length");
        reject(&bytes[..10], "magic");
        let mut b = bytes.clone();
        b[0] = b'X';
        reject(&b, "magic");
        let mut b = bytes.clone();
        b[20] ^= 1;
        reject(&b, "checksum");
        let mut b = bytes.clone();
        b[10] = 2;
        reject(&b, "words");
        // A consistent-looking body with a valid checksum but counts that do not add up.
        let mut b = bytes.clone();
        let at = HEADER + 2;
        b[at] = b[at].wrapping_add(1);
        let end = b.len() - TRAILER;
        let sum = fnv1a(&b[..end]).to_le_bytes();
        b[end..].copy_from_slice(&sum);
        reject(&b, "inconsistent");
    }
}
