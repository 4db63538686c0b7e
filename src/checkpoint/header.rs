//! Parsing and validating one safetensors file held in memory (or mapped).
//!
//! Layout: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON, then the data
//! section. The JSON maps tensor names to `{"dtype", "shape", "data_offsets": [start, end]}`
//! (offsets relative to the data section) and may hold a `__metadata__` object of strings.

use super::error::CheckpointError;
use crate::Dtype;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest header accepted, as in the safetensors crate: 100 MB.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// One tensor of a validated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Name, as in the header.
    pub name: String,
    /// dtype, as safetensors spells it (`"BF16"`, `"I64"`, ...).
    pub dtype: String,
    /// The element type npmk fits, for BF16, F16 and F32; `None` for every other dtype.
    pub element: Option<Dtype>,
    /// Shape; empty for a scalar.
    pub shape: Vec<u64>,
    /// Number of elements: the product of the shape (1 for a scalar).
    pub numel: u64,
    /// Byte range within the whole file (not the data section).
    pub start: usize,
    /// End of the byte range within the whole file (exclusive).
    pub end: usize,
}

/// The entries of a JSON object in file order, duplicates kept (a map type would drop them).
pub(crate) struct Entries(pub(crate) Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// What a non-safetensors file starting with these bytes looks like, if it is recognisably a
/// download gone wrong.
fn sniff_download(bytes: &[u8]) -> Option<&'static str> {
    let head = &bytes[..bytes.len().min(512)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let text = &head[start..];
    let lower: Vec<u8> = text.iter().take(64).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"version https://git-lfs") {
        Some("a Git-LFS pointer")
    } else if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        Some("an HTML page")
    } else if lower.starts_with(b"<?xml") || lower.starts_with(b"<") {
        Some("an HTML or XML page")
    } else {
        None
    }
}

/// Whether the first 8 bytes read as text (so a huge "header length" is really characters).
fn looks_like_text(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..8].iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// Validates a whole safetensors file and lists its tensors in header order.
///
/// Checks, each with its own [`CheckpointError`] variant: empty and truncated files, failed
/// downloads (Git-LFS pointers, HTML pages), the 100 MB header cap (before anything is
/// allocated), UTF-8 and JSON, duplicate names, the dtype allow-list, shape overflow, offsets
/// reversed, past the end, of the wrong size, overlapping or leaving gaps, and trailing bytes.
/// The file then goes through the safetensors crate's own validation as well.
///
/// `file` only labels errors. Never panics, whatever `bytes` holds.
pub fn parse_safetensors(file: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>, CheckpointError> {
    let file_buf = || file.to_path_buf();

    // The 8-byte length, with the obvious impostors named first.
    if bytes.is_empty() {
        return Err(CheckpointError::Empty { file: file_buf() });
    }
    if let Some(looks_like) = sniff_download(bytes) {
        return Err(CheckpointError::FailedDownload { file: file_buf(), looks_like });
    }
    if bytes.len() < 8 {
        return Err(CheckpointError::TooShort { file: file_buf(), len: bytes.len() as u64 });
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let file_len = bytes.len() as u64;
    if header_len > MAX_HEADER_LEN || header_len > file_len - 8 {
        if looks_like_text(bytes) {
            return Err(CheckpointError::FailedDownload {
                file: file_buf(),
                looks_like: "a text file",
            });
        }
        if header_len > MAX_HEADER_LEN {
            return Err(CheckpointError::HeaderTooLarge { file: file_buf(), len: header_len });
        }
        return Err(CheckpointError::HeaderPastEnd { file: file_buf(), header_len, file_len });
    }
    let data_start = 8 + header_len as usize;
    let header = &bytes[8..data_start];
    let data_len = (bytes.len() - data_start) as u64;

    // The JSON, entry by entry, keeping duplicates so that they can be reported.
    let text = std::str::from_utf8(header)
        .map_err(|e| CheckpointError::HeaderNotUtf8 { file: file_buf(), at: e.valid_up_to() })?;
    let Entries(entries) = serde_json::from_str(text)
        .map_err(|e| CheckpointError::HeaderNotJson { file: file_buf(), detail: e.to_string() })?;

    // Each entry on its own.
    let mut seen = HashSet::with_capacity(entries.len());
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(CheckpointError::DuplicateName { file: file_buf(), tensor: name });
        }
        if name == "__metadata__" {
            let ok = value.as_object().is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(CheckpointError::BadMetadata { file: file_buf() });
            }
            continue;
        }
        let (entry, span) = read_entry(file, name, &value, data_start, data_len)?;
        tensors.push((entry, span));
    }

    // The layout: sorted by offsets, tensors must tile the data section exactly.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| tensors[i].1);
    let mut cursor = 0u64;
    let mut previous: Option<usize> = None;
    for &i in &order {
        let (entry, (start, end)) = &tensors[i];
        if *start > cursor {
            return Err(CheckpointError::Gap {
                file: file_buf(),
                tensor: entry.name.clone(),
                from: cursor,
                to: *start,
            });
        }
        if *start < cursor {
            let other = previous.map(|p| tensors[p].0.name.clone()).unwrap_or_default();
            return Err(CheckpointError::Overlap {
                file: file_buf(),
                tensor: entry.name.clone(),
                other,
            });
        }
        cursor = *end;
        if end > start {
            previous = Some(i);
        }
    }
    if cursor < data_len {
        return Err(CheckpointError::TrailingBytes { file: file_buf(), count: data_len - cursor });
    }

    // The reference reader must agree.
    if let Err(e) = safetensors::SafeTensors::read_metadata(bytes) {
        return Err(CheckpointError::Rejected { file: file_buf(), detail: e.to_string() });
    }
    Ok(tensors.into_iter().map(|(entry, _)| entry).collect())
}

/// Reads and checks one tensor entry; returns it with its span in the data section.
fn read_entry(
    file: &Path,
    name: String,
    value: &Value,
    data_start: usize,
    data_len: u64,
) -> Result<(TensorEntry, (u64, u64)), CheckpointError> {
    let bad = |name: &str, detail: &str| CheckpointError::BadEntry {
        file: PathBuf::from(file),
        tensor: name.to_string(),
        detail: detail.to_string(),
    };
    let Some(object) = value.as_object() else {
        return Err(bad(&name, "entry is not an object"));
    };
    let Some(dtype) = object.get("dtype").and_then(Value::as_str) else {
        return Err(bad(&name, "`dtype` is missing or not a string"));
    };
    let shape: Option<Vec<u64>> = object
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| dims.iter().map(Value::as_u64).collect());
    let Some(shape) = shape else {
        return Err(bad(&name, "`shape` is missing or not a list of non-negative integers"));
    };
    let offsets: Option<Vec<u64>> = object
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|o| o.iter().map(Value::as_u64).collect());
    let Some([start, end]) = offsets.as_deref().and_then(|o| <[u64; 2]>::try_from(o).ok()) else {
        return Err(bad(&name, "`data_offsets` is missing or not two non-negative integers"));
    };

    // dtype: the safetensors crate's list is the allow-list.
    let Ok(st_dtype) = serde_json::from_value::<safetensors::Dtype>(Value::from(dtype)) else {
        return Err(CheckpointError::UnknownDtype {
            file: file.to_path_buf(),
            tensor: name,
            dtype: dtype.to_string(),
        });
    };
    let overflow =
        || CheckpointError::ShapeOverflow { file: file.to_path_buf(), tensor: name.clone() };
    let numel = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).ok_or_else(overflow)?;
    let bits = numel.checked_mul(st_dtype.bitsize() as u64).ok_or_else(overflow)?;
    if bits % 8 != 0 {
        return Err(CheckpointError::NotWholeBytes { file: file.to_path_buf(), tensor: name });
    }
    let expected = bits / 8;

    // Offsets: ordered, inside the data section, of the right size.
    if end < start {
        return Err(CheckpointError::OffsetsReversed {
            file: file.to_path_buf(),
            tensor: name,
            start,
            end,
        });
    }
    if end > data_len {
        return Err(CheckpointError::OffsetPastEnd {
            file: file.to_path_buf(),
            tensor: name,
            end,
            data_len,
        });
    }
    if end - start != expected {
        return Err(CheckpointError::SizeMismatch {
            file: file.to_path_buf(),
            tensor: name,
            expected,
            found: end - start,
        });
    }
    let element = match dtype {
        "BF16" => Some(Dtype::BF16),
        "F16" => Some(Dtype::F16),
        "F32" => Some(Dtype::F32),
        _ => None,
    };
    // Both offsets are at most data_len, which came from a usize.
    let entry = TensorEntry {
        name,
        dtype: dtype.to_string(),
        element,
        shape,
        numel,
        start: data_start + start as usize,
        end: data_start + end as usize,
    };
    Ok((entry, (start, end)))
}
