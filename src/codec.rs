//! A stable, versioned byte format for sketches, and its strict decoder.
//!
//! Version 1, all integers little-endian:
//!
//! ```text
//!  offset  size      field
//!       0     6      magic "NPMKSK"
//!       6     2      version = 1
//!       8     4      flags = 0 (reserved)
//!      12     4      B = number of occupied bins
//!      16    64      zero, NaN, +Inf, -Inf, subnormal, pushed bf16, pushed f16, pushed f32 (u64)
//!      80  12*B      occupied bins in increasing index order: index (u32), count (u64)
//!  80+12B     4      CRC-32 (IEEE) of every byte before it
//! ```
//!
//! The decoder accepts exactly this: any truncation, trailing byte, unknown version, flag,
//! out-of-order or empty bin, or count that does not add up is an error, and the CRC catches
//! every single corrupted byte. It never panics and never allocates. Encoding a sketch and
//! decoding the bytes gives back an identical state.

use crate::layout::{word, BIN_COUNT};
use crate::sketch::{InconsistentState, Sketch};

/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

const MAGIC: &[u8; 6] = b"NPMKSK";
const HEADER: usize = 80;
const ENTRY: usize = 12;
const TRAILER: usize = 4;

/// The special words, in the order the format stores them.
const SPECIALS: [usize; 8] = [
    word::ZERO,
    word::NAN,
    word::POS_INF,
    word::NEG_INF,
    word::SUBNORMAL,
    word::PUSHED_BF16,
    word::PUSHED_F16,
    word::PUSHED_F32,
];

/// The largest encoding: every bin occupied.
pub const MAX_ENCODED_LEN: usize = HEADER + ENTRY * BIN_COUNT + TRAILER;

/// Why bytes could not be encoded into a buffer or decoded into a sketch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The output buffer is smaller than [`Sketch::encoded_len`].
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// The bytes do not start with the sketch magic.
    NotASketch,
    /// A version this build does not read.
    UnsupportedVersion(u16),
    /// The length is not the one the header announces (truncated or trailing bytes).
    WrongLength {
        /// Length the header implies (or the minimum, if the header itself is cut).
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The checksum does not match: the bytes were corrupted.
    ChecksumMismatch,
    /// Reserved flags are set, or a bin entry is out of range, out of order or empty.
    Malformed(&'static str),
    /// The counts decode but no sequence of pushes produces them.
    Inconsistent(InconsistentState),
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CodecError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: the encoding needs {needed} bytes")
            }
            CodecError::NotASketch => f.write_str("not an npmk sketch (bad magic)"),
            CodecError::UnsupportedVersion(v) => {
                write!(f, "sketch format version {v} is not supported (this build reads {VERSION})")
            }
            CodecError::WrongLength { expected, found } => {
                write!(f, "sketch bytes are {found} long, expected {expected}: truncated or padded")
            }
            CodecError::ChecksumMismatch => {
                f.write_str("sketch checksum mismatch: corrupted bytes")
            }
            CodecError::Malformed(what) => write!(f, "malformed sketch: {what}"),
            CodecError::Inconsistent(e) => write!(f, "inconsistent sketch: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CodecError {}

/// CRC-32 (IEEE 802.3, reflected), table built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Sketch {
    /// Bytes [`encode_into`](Sketch::encode_into) writes for this sketch.
    pub fn encoded_len(&self) -> usize {
        let occupied = self.words()[..BIN_COUNT].iter().filter(|&&c| c != 0).count();
        HEADER + ENTRY * occupied + TRAILER
    }

    /// Writes the encoding into `out` and returns its length; no allocation.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, CodecError> {
        let needed = self.encoded_len();
        if out.len() < needed {
            return Err(CodecError::BufferTooSmall { needed });
        }
        let words = self.words();
        out[..6].copy_from_slice(MAGIC);
        out[6..8].copy_from_slice(&VERSION.to_le_bytes());
        out[8..12].copy_from_slice(&0u32.to_le_bytes());
        let occupied = (needed - HEADER - TRAILER) / ENTRY;
        out[12..16].copy_from_slice(&(occupied as u32).to_le_bytes());
        for (i, &w) in SPECIALS.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&words[w].to_le_bytes());
        }
        let mut at = HEADER;
        for (index, &count) in words[..BIN_COUNT].iter().enumerate().filter(|(_, &c)| c != 0) {
            out[at..at + 4].copy_from_slice(&(index as u32).to_le_bytes());
            out[at + 4..at + 12].copy_from_slice(&count.to_le_bytes());
            at += ENTRY;
        }
        let crc = crc32(&out[..at]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(at + TRAILER)
    }

    /// Replaces this sketch's state with the decoded `bytes`. On error the sketch is left
    /// unchanged: everything is validated before anything is written.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        validate(bytes)?;
        let mut staged = [0u64; SPECIALS.len()];
        for (i, s) in staged.iter_mut().enumerate() {
            *s = read_u64(bytes, 16 + 8 * i);
        }
        // The counts must add up before the state is touched; check them on the bytes.
        check_totals(bytes, &staged)?;
        self.clear();
        let words = self.words_mut();
        for (&w, &v) in SPECIALS.iter().zip(&staged) {
            words[w] = v;
        }
        let occupied = read_u32(bytes, 12) as usize;
        for e in 0..occupied {
            let at = HEADER + ENTRY * e;
            words[read_u32(bytes, at) as usize] = read_u64(bytes, at + 4);
        }
        Ok(())
    }

    /// The encoding as a new vector.
    #[cfg(feature = "alloc")]
    pub fn to_bytes(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec![0u8; self.encoded_len()];
        let written = self.encode_into(&mut out).expect("buffer sized by encoded_len");
        out.truncate(written);
        out
    }

    /// Decodes bytes into a new boxed sketch.
    #[cfg(feature = "alloc")]
    pub fn from_bytes(bytes: &[u8]) -> Result<alloc::boxed::Box<Sketch>, CodecError> {
        let mut sketch = Sketch::new_boxed();
        sketch.decode_into(bytes)?;
        Ok(sketch)
    }
}

/// Checks framing, checksum and bin entries without touching any sketch.
fn validate(bytes: &[u8]) -> Result<(), CodecError> {
    let minimum = HEADER + TRAILER;
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(if bytes.len() < 6 && MAGIC.starts_with(bytes) {
            CodecError::WrongLength { expected: minimum, found: bytes.len() }
        } else {
            CodecError::NotASketch
        });
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    if bytes.len() < minimum {
        return Err(CodecError::WrongLength { expected: minimum, found: bytes.len() });
    }
    let occupied = read_u32(bytes, 12) as usize;
    let expected = if occupied <= BIN_COUNT { HEADER + ENTRY * occupied + TRAILER } else { 0 };
    if expected != bytes.len() {
        return Err(if occupied > BIN_COUNT {
            CodecError::Malformed("more bin entries than bins")
        } else {
            CodecError::WrongLength { expected, found: bytes.len() }
        });
    }
    let body = bytes.len() - TRAILER;
    if crc32(&bytes[..body]) != read_u32(bytes, body) {
        return Err(CodecError::ChecksumMismatch);
    }
    if read_u32(bytes, 8) != 0 {
        return Err(CodecError::Malformed("reserved flags are set"));
    }
    let mut previous: Option<u32> = None;
    for e in 0..occupied {
        let at = HEADER + ENTRY * e;
        let index = read_u32(bytes, at);
        if index as usize >= BIN_COUNT {
            return Err(CodecError::Malformed("bin index out of range"));
        }
        if previous.is_some_and(|p| index <= p) {
            return Err(CodecError::Malformed("bin entries out of order"));
        }
        if read_u64(bytes, at + 4) == 0 {
            return Err(CodecError::Malformed("empty bin entry"));
        }
        previous = Some(index);
    }
    Ok(())
}

/// The invariant of [`Sketch::check`], evaluated on validated bytes.
fn check_totals(bytes: &[u8], specials: &[u64; 8]) -> Result<(), CodecError> {
    let disagree = CodecError::Inconsistent(InconsistentState::CountsDisagree);
    let occupied = read_u32(bytes, 12) as usize;
    let mut binned: u64 = 0;
    for e in 0..occupied {
        binned = binned.checked_add(read_u64(bytes, HEADER + ENTRY * e + 4)).ok_or(disagree)?;
    }
    let [zero, nan, pos_inf, neg_inf, subnormal, bf16, f16, f32] = *specials;
    let total = bf16.checked_add(f16).and_then(|t| t.checked_add(f32)).ok_or(disagree)?;
    let accounted = [zero, nan, pos_inf, neg_inf]
        .iter()
        .try_fold(binned, |acc, &c| acc.checked_add(c))
        .ok_or(disagree)?;
    if accounted != total || subnormal > binned {
        return Err(disagree);
    }
    Ok(())
}
