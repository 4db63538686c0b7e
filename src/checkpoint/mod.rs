//! Reading checkpoints: one `.safetensors` file, a sharded checkpoint, or a directory holding
//! either.
//!
//! [`Checkpoint::open`] memory-maps every file, validates it completely (see
//! [`parse_safetensors`] and [`parse_index`]) and lists the tensors in a deterministic order:
//! by name, with runs of digits compared as numbers (`layers.2` before `layers.10`). A sharded
//! checkpoint and the single file it was split from therefore list the same tensors in the same
//! order. Tensor bytes are then borrowed straight from the maps ([`Checkpoint::bytes`]); nothing
//! is copied.
//!
//! # What a path may be
//!
//! * a `.safetensors` file (any other name that is not an index is read as one too);
//! * a `*.safetensors.index.json` file: the shards it names, relative to its directory;
//! * a directory holding exactly one `*.safetensors.index.json`, or else exactly one
//!   `*.safetensors` file.
//!
//! # Limitations
//!
//! * Files are memory-mapped. If another process truncates a file while it is mapped, reading
//!   the lost pages raises `SIGBUS` and the process dies: a known limit of memory maps, which
//!   this reader does not try to trap. Modifying a file in place while it is scanned gives
//!   results for a mixture of old and new bytes.
//! * Shard paths are checked as written (no `..`, not absolute), not by resolving symbolic
//!   links, so that link-based caches work.
//! * Files larger than the address space (on 32-bit targets) cannot be mapped.

mod error;
mod header;
mod index;

pub use error::CheckpointError;
pub use header::{parse_safetensors, TensorEntry, MAX_HEADER_LEN};
pub use index::{parse_index, ShardIndex};

use memmap2::Mmap;
use std::cmp::Ordering;
use std::fs::File;
use std::path::{Path, PathBuf};

/// One mapped file of a checkpoint.
struct MappedFile {
    path: PathBuf,
    map: Mmap,
}

/// A validated, memory-mapped checkpoint.
pub struct Checkpoint {
    path: PathBuf,
    index: Option<PathBuf>,
    files: Vec<MappedFile>,
    tensors: Vec<Tensor>,
}

/// One tensor of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// The tensor as its file's header describes it (byte range within that file).
    pub entry: TensorEntry,
    /// Which of [`Checkpoint::files`] holds it.
    pub file: usize,
}

impl Tensor {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Its size in bytes.
    pub fn byte_len(&self) -> usize {
        self.entry.end - self.entry.start
    }
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("files", &self.files().collect::<Vec<_>>())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens, maps and validates the checkpoint at `path` (see the module docs for what it
    /// may be).
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let io = |source| CheckpointError::Io { file: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        let target = if meta.is_dir() { resolve_directory(path)? } else { path.to_path_buf() };
        let is_index =
            target.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".index.json"));
        let mut checkpoint = if is_index {
            open_sharded(&target)?
        } else {
            let file = map_file(&target)?;
            let entries = parse_safetensors(&file.path, &file.map)?;
            let tensors = entries.into_iter().map(|entry| Tensor { entry, file: 0 }).collect();
            Checkpoint { path: PathBuf::new(), index: None, files: vec![file], tensors }
        };
        checkpoint.path = path.to_path_buf();
        checkpoint.tensors.sort_by(|a, b| natural_cmp(a.name(), b.name()));
        Ok(checkpoint)
    }

    /// The path given to [`open`](Checkpoint::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index file of a sharded checkpoint.
    pub fn index(&self) -> Option<&Path> {
        self.index.as_deref()
    }

    /// The safetensors files, in the order [`Tensor::file`] refers to.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Every tensor, in natural name order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The tensor's bytes, borrowed from the map (little-endian, any alignment).
    pub fn bytes(&self, tensor: &Tensor) -> &[u8] {
        &self.files[tensor.file].map[tensor.entry.start..tensor.entry.end]
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.byte_len() as u64).sum()
    }
}

/// Maps a file read-only.
fn map_file(path: &Path) -> Result<MappedFile, CheckpointError> {
    let io = |source| CheckpointError::Io { file: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        // A zero-length map is refused by some systems; the parser names the problem.
        return Err(CheckpointError::Empty { file: path.to_path_buf() });
    }
    // SAFETY: the map is read-only and lives as long as `MappedFile`; we only ever read it as
    // plain bytes, for which every value is valid. Another process could still change or
    // truncate the file while it is mapped: changed bytes give wrong numbers, and a truncation
    // raises SIGBUS on access (a documented limitation of this module).
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    #[cfg(unix)]
    {
        // Only a hint for read-ahead; a failure changes nothing.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(MappedFile { path: path.to_path_buf(), map })
}

/// The file to read in a directory: its one index, else its one `.safetensors` file.
fn resolve_directory(dir: &Path) -> Result<PathBuf, CheckpointError> {
    let io = |source| CheckpointError::Io { file: dir.to_path_buf(), source };
    let mut indexes = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".safetensors.index.json") {
            indexes.push(entry.path());
        } else if name.ends_with(".safetensors") {
            files.push(entry.path());
        }
    }
    match (indexes.len(), files.len()) {
        (1, _) => Ok(indexes.pop().expect("one index")),
        (0, 1) => Ok(files.pop().expect("one file")),
        (0, 0) => Err(CheckpointError::NoCheckpoint { file: dir.to_path_buf() }),
        (0, n) => Err(CheckpointError::Ambiguous {
            file: dir.to_path_buf(),
            found: format!("{n} .safetensors files and no index"),
        }),
        (n, _) => Err(CheckpointError::Ambiguous {
            file: dir.to_path_buf(),
            found: format!("{n} .safetensors.index.json files"),
        }),
    }
}

/// Reads an index and its shards, and checks that they agree both ways.
fn open_sharded(index_path: &Path) -> Result<Checkpoint, CheckpointError> {
    let io = |source| CheckpointError::Io { file: index_path.to_path_buf(), source };
    let bytes = std::fs::read(index_path).map_err(io)?;
    let index = parse_index(index_path, &bytes)?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let by_shard = index.by_shard();

    let mut files = Vec::new();
    let mut tensors = Vec::new();
    for (shard, listed) in &by_shard {
        let shard_path = dir.join(shard);
        if !shard_path.is_file() {
            return Err(CheckpointError::ShardMissing {
                file: index_path.to_path_buf(),
                shard: shard.to_string(),
            });
        }
        let file = map_file(&shard_path)?;
        let entries = parse_safetensors(&file.path, &file.map)?;

        // Every tensor of the shard is mapped to it, and every tensor mapped to it is there.
        for entry in &entries {
            if !listed.contains(entry.name.as_str()) {
                return Err(CheckpointError::NotInIndex {
                    file: shard_path,
                    tensor: entry.name.clone(),
                });
            }
        }
        if entries.len() != listed.len() {
            let present: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.name.as_str()).collect();
            let mut missing: Vec<&str> =
                listed.iter().copied().filter(|t| !present.contains(t)).collect();
            missing.sort_unstable();
            return Err(CheckpointError::NotInShard {
                file: index_path.to_path_buf(),
                tensor: missing.first().copied().unwrap_or_default().to_string(),
                shard: shard.to_string(),
            });
        }
        let n = files.len();
        tensors.extend(entries.into_iter().map(|entry| Tensor { entry, file: n }));
        files.push(file);
    }
    Ok(Checkpoint { path: PathBuf::new(), index: Some(index_path.to_path_buf()), files, tensors })
}

/// Orders names with runs of ASCII digits compared by value: `h.2.` before `h.10.`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (trim_zeros(&a[si..i]), trim_zeros(&b[sj..j]));
            let by_value = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            // Equal values with different zero padding: fall back on the digits themselves.
            let ord = by_value.then_with(|| a[si..i].cmp(&b[sj..j]));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let first = digits.iter().position(|&d| d != b'0').unwrap_or(digits.len());
    &digits[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["h.10.w", "h.2.w", "h.1.w", "a", "h.02.w", "h.2.v", "h.2"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["a", "h.1.w", "h.02.w", "h.2", "h.2.v", "h.2.w", "h.10.w"]);
        assert_eq!(natural_cmp("x9", "x10"), Ordering::Less);
        assert_eq!(natural_cmp("same", "same"), Ordering::Equal);
        assert_eq!(natural_cmp("a.18446744073709551617", "a.9"), Ordering::Greater);
    }

    #[test]
    fn shard_paths_must_stay_inside() {
        let index = |shard: &str| {
            let text = format!(r#"{{"weight_map": {{"w": {}}}}}"#, serde_json::json!(shard));
            parse_index(Path::new("i.json"), text.as_bytes())
        };
        assert!(index("model-00001.safetensors").is_ok());
        assert!(index("./sub/model.safetensors").is_ok());
        for bad in ["../x.safetensors", "/etc/passwd", "a/../../b", "", ".", "a\\..\\b"] {
            let err = index(bad).expect_err(bad);
            assert!(matches!(err, CheckpointError::ShardEscapes { .. }), "{bad}: {err}");
        }
    }
}
