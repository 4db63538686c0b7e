//! The one error type of checkpoint reading: a variant per broken rule.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a checkpoint cannot be read. Every variant names the file it is about and, where there is
/// one, the tensor; [`Display`](fmt::Display) is one line that starts with the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file or directory could not be opened, listed, read or mapped.
    Io {
        /// The path.
        file: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A directory holds no `.safetensors` file and no index.
    NoCheckpoint {
        /// The directory.
        file: PathBuf,
    },
    /// A directory holds several candidates (files or indexes) and nothing says which to read.
    Ambiguous {
        /// The directory.
        file: PathBuf,
        /// What was found, e.g. `3 .safetensors files and no index`.
        found: String,
    },
    /// The file is empty.
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// The file ends before the 8-byte header length.
    TooShort {
        /// The file.
        file: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// The file is a Git-LFS pointer, an HTML page or another text file: a failed download.
    FailedDownload {
        /// The file.
        file: PathBuf,
        /// What it looks like ("a Git-LFS pointer", "an HTML page", "a text file").
        looks_like: &'static str,
    },
    /// The header length is above the 100 MB cap (checked before anything is allocated).
    HeaderTooLarge {
        /// The file.
        file: PathBuf,
        /// The declared header length.
        len: u64,
    },
    /// The header length points past the end of the file: the file is truncated.
    HeaderPastEnd {
        /// The file.
        file: PathBuf,
        /// The declared header length.
        header_len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The header is not UTF-8.
    HeaderNotUtf8 {
        /// The file.
        file: PathBuf,
        /// Byte offset (within the header) of the first invalid byte.
        at: usize,
    },
    /// The header is not JSON, or not a JSON object.
    HeaderNotJson {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The `__metadata__` entry is not an object of strings.
    BadMetadata {
        /// The file.
        file: PathBuf,
    },
    /// A tensor entry lacks a field or has one of the wrong type.
    BadEntry {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// Two entries have the same name.
    DuplicateName {
        /// The file.
        file: PathBuf,
        /// The repeated name.
        tensor: String,
    },
    /// A dtype safetensors does not define.
    UnknownDtype {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype as written.
        dtype: String,
    },
    /// The product of the shape (times the element size) overflows 64 bits.
    ShapeOverflow {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// A sub-byte dtype whose elements do not fill whole bytes.
    NotWholeBytes {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// `data_offsets` end before they start.
    OffsetsReversed {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Declared start.
        start: u64,
        /// Declared end.
        end: u64,
    },
    /// `data_offsets` reach past the end of the file: out of range, or the file is truncated.
    OffsetPastEnd {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Declared end, relative to the data section.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// The byte span does not match shape times element size.
    SizeMismatch {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Bytes the shape and dtype call for.
        expected: u64,
        /// Bytes the offsets span.
        found: u64,
    },
    /// Two tensors share bytes.
    Overlap {
        /// The file.
        file: PathBuf,
        /// The tensor that starts inside another.
        tensor: String,
        /// The tensor it starts inside.
        other: String,
    },
    /// Bytes between two tensors (or before the first) belong to none.
    Gap {
        /// The file.
        file: PathBuf,
        /// The tensor after the gap.
        tensor: String,
        /// First unclaimed byte (relative to the data section).
        from: u64,
        /// The tensor's start.
        to: u64,
    },
    /// Bytes after the last tensor belong to none.
    TrailingBytes {
        /// The file.
        file: PathBuf,
        /// How many.
        count: u64,
    },
    /// The safetensors crate rejected a file our own checks passed.
    Rejected {
        /// The file.
        file: PathBuf,
        /// The crate's message.
        detail: String,
    },
    /// A sharded index is not JSON, or not an object.
    IndexNotJson {
        /// The index file.
        file: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// A sharded index has no `weight_map` object.
    IndexNoWeightMap {
        /// The index file.
        file: PathBuf,
    },
    /// A `weight_map` value is not a string.
    IndexBadEntry {
        /// The index file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// A shard path is absolute or leaves the checkpoint's directory.
    ShardEscapes {
        /// The index file.
        file: PathBuf,
        /// The tensor mapped to it.
        tensor: String,
        /// The path as written.
        shard: String,
    },
    /// A shard the index names does not exist.
    ShardMissing {
        /// The index file.
        file: PathBuf,
        /// The shard path as written.
        shard: String,
    },
    /// The index maps a tensor to a shard that does not hold it.
    NotInShard {
        /// The index file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shard.
        shard: String,
    },
    /// A shard holds a tensor the index does not map to it.
    NotInIndex {
        /// The shard file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
    },
}

impl CheckpointError {
    /// The file (or directory) the error is about.
    pub fn file(&self) -> &Path {
        use CheckpointError::*;
        match self {
            Io { file, .. }
            | NoCheckpoint { file }
            | Ambiguous { file, .. }
            | Empty { file }
            | TooShort { file, .. }
            | FailedDownload { file, .. }
            | HeaderTooLarge { file, .. }
            | HeaderPastEnd { file, .. }
            | HeaderNotUtf8 { file, .. }
            | HeaderNotJson { file, .. }
            | BadMetadata { file }
            | BadEntry { file, .. }
            | DuplicateName { file, .. }
            | UnknownDtype { file, .. }
            | ShapeOverflow { file, .. }
            | NotWholeBytes { file, .. }
            | OffsetsReversed { file, .. }
            | OffsetPastEnd { file, .. }
            | SizeMismatch { file, .. }
            | Overlap { file, .. }
            | Gap { file, .. }
            | TrailingBytes { file, .. }
            | Rejected { file, .. }
            | IndexNotJson { file, .. }
            | IndexNoWeightMap { file }
            | IndexBadEntry { file, .. }
            | ShardEscapes { file, .. }
            | ShardMissing { file, .. }
            | NotInShard { file, .. }
            | NotInIndex { file, .. } => file,
        }
    }

    /// The tensor the error is about, if there is one.
    pub fn tensor(&self) -> Option<&str> {
        use CheckpointError::*;
        match self {
            BadEntry { tensor, .. }
            | DuplicateName { tensor, .. }
            | UnknownDtype { tensor, .. }
            | ShapeOverflow { tensor, .. }
            | NotWholeBytes { tensor, .. }
            | OffsetsReversed { tensor, .. }
            | OffsetPastEnd { tensor, .. }
            | SizeMismatch { tensor, .. }
            | Overlap { tensor, .. }
            | Gap { tensor, .. }
            | IndexBadEntry { tensor, .. }
            | ShardEscapes { tensor, .. }
            | NotInShard { tensor, .. }
            | NotInIndex { tensor, .. } => Some(tensor),
            _ => None,
        }
    }
}

/// Shows a name from a file on one line: control characters escaped, in backticks.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("`")
    }
}

/// Text from a parser or the OS, on one line.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                f.write_str(" ")?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        let path = self.file().display().to_string();
        write!(f, "{}: ", OneLine(&path))?;
        if let Some(tensor) = self.tensor() {
            write!(f, "tensor {}: ", Quoted(tensor))?;
        }
        match self {
            Io { source, .. } => write!(f, "{}", OneLine(&source.to_string())),
            NoCheckpoint { .. } => f.write_str(
                "no .safetensors file or index in this directory (for the checkpoints of a \
                 training run, use npmk trajectory)",
            ),
            Ambiguous { found, .. } => write!(f, "{found}; name the file or index to read"),
            Empty { .. } => f.write_str("empty file, not a safetensors checkpoint"),
            TooShort { len, .. } => {
                write!(f, "{len} bytes, shorter than the 8-byte header length (truncated?)")
            }
            FailedDownload { looks_like, .. } => write!(
                f,
                "not a safetensors file: looks like {looks_like} (a failed download? \
                 fetch the real file, e.g. `git lfs pull`)"
            ),
            HeaderTooLarge { len, .. } => {
                write!(f, "header length {len} is above the 100 MB cap (corrupt file?)")
            }
            HeaderPastEnd { header_len, file_len, .. } => write!(
                f,
                "header length {header_len} reaches past the end of the {file_len}-byte file \
                 (truncated?)"
            ),
            HeaderNotUtf8 { at, .. } => write!(f, "header is not UTF-8 (invalid byte at {at})"),
            HeaderNotJson { detail, .. } => {
                write!(f, "header is not a JSON object: {}", OneLine(detail))
            }
            BadMetadata { .. } => f.write_str("`__metadata__` is not an object of strings"),
            BadEntry { detail, .. } => write!(f, "{}", OneLine(detail)),
            DuplicateName { .. } => f.write_str("name appears twice in the header"),
            UnknownDtype { dtype, .. } => write!(f, "unknown dtype {}", Quoted(dtype)),
            ShapeOverflow { .. } => f.write_str("shape product overflows"),
            NotWholeBytes { .. } => f.write_str("elements do not fill a whole number of bytes"),
            OffsetsReversed { start, end, .. } => {
                write!(f, "data_offsets end before they start ([{start}, {end}])")
            }
            OffsetPastEnd { end, data_len, .. } => write!(
                f,
                "data ends at byte {end}, past the {data_len}-byte data section (out of range or \
                 truncated file)"
            ),
            SizeMismatch { expected, found, .. } => {
                write!(f, "data_offsets span {found} bytes but shape and dtype need {expected}")
            }
            Overlap { other, .. } => write!(f, "data overlaps tensor {}", Quoted(other)),
            Gap { from, to, .. } => {
                write!(f, "bytes {from}..{to} before it belong to no tensor (gap in offsets)")
            }
            TrailingBytes { count, .. } => {
                write!(f, "{count} trailing bytes after the last tensor")
            }
            Rejected { detail, .. } => {
                write!(f, "rejected by the safetensors reader: {}", OneLine(detail))
            }
            IndexNotJson { detail, .. } => {
                write!(f, "sharded index is not a JSON object: {}", OneLine(detail))
            }
            IndexNoWeightMap { .. } => f.write_str("sharded index has no `weight_map` object"),
            IndexBadEntry { .. } => f.write_str("weight_map value is not a file name"),
            ShardEscapes { shard, .. } => {
                write!(f, "shard path {} leaves the checkpoint directory", Quoted(shard))
            }
            ShardMissing { shard, .. } => write!(f, "shard {} is missing", Quoted(shard)),
            NotInShard { shard, .. } => {
                write!(f, "listed in the index but absent from shard {}", Quoted(shard))
            }
            NotInIndex { .. } => f.write_str("in this shard but not mapped to it by the index"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
