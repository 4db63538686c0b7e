//! Sharded checkpoints: the `*.safetensors.index.json` file.
//!
//! The index is `{"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}`.
//! Shard paths are relative to the index's directory and must stay inside it: absolute paths
//! and `..` components are refused. The check is on the path as written, not on where symbolic
//! links lead, so a Hugging Face cache (whose snapshot files are links into a blob store) reads
//! as usual.

use super::error::CheckpointError;
use super::header::Entries;
use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path};

/// A parsed index: tensor name to shard path (as written), in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardIndex {
    /// `(tensor, shard)` pairs of the weight map.
    pub entries: Vec<(String, String)>,
}

impl ShardIndex {
    /// The distinct shard paths, sorted.
    pub fn shards(&self) -> Vec<&str> {
        let mut shards: Vec<&str> = self.entries.iter().map(|(_, s)| s.as_str()).collect();
        shards.sort_unstable();
        shards.dedup();
        shards
    }

    /// The tensors the index maps to each shard.
    pub fn by_shard(&self) -> BTreeMap<&str, HashSet<&str>> {
        let mut map: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
        for (tensor, shard) in &self.entries {
            map.entry(shard.as_str()).or_default().insert(tensor.as_str());
        }
        map
    }
}

/// The index file's shape; other top-level fields (`metadata`) are ignored. The weight map is
/// read entry by entry, so that a name given twice is seen rather than silently overwritten.
#[derive(serde::Deserialize)]
struct RawIndex {
    weight_map: Option<Entries>,
}

/// Parses and checks an index file's bytes: JSON object, a `weight_map` object of strings, no
/// name twice, shard paths that stay inside the directory. `file` only labels errors. Never
/// panics.
pub fn parse_index(file: &Path, bytes: &[u8]) -> Result<ShardIndex, CheckpointError> {
    let not_json = |detail: String| CheckpointError::IndexNotJson { file: file.into(), detail };
    if bytes.len() as u64 > super::header::MAX_HEADER_LEN {
        return Err(not_json("larger than the 100 MB cap".into()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| not_json(e.to_string()))?;
    let raw: RawIndex = serde_json::from_str(text).map_err(|e| not_json(e.to_string()))?;
    let Some(Entries(pairs)) = raw.weight_map else {
        return Err(CheckpointError::IndexNoWeightMap { file: file.into() });
    };

    let mut seen = HashSet::with_capacity(pairs.len());
    let mut entries = Vec::with_capacity(pairs.len());
    for (tensor, value) in pairs {
        if !seen.insert(tensor.clone()) {
            return Err(CheckpointError::DuplicateName { file: file.into(), tensor });
        }
        let Some(shard) = value.as_str() else {
            return Err(CheckpointError::IndexBadEntry { file: file.into(), tensor });
        };
        if !stays_inside(shard) {
            let shard = shard.to_string();
            return Err(CheckpointError::ShardEscapes { file: file.into(), tensor, shard });
        }
        entries.push((tensor, shard.to_string()));
    }
    Ok(ShardIndex { entries })
}

/// Whether a relative path names something inside its base directory: only normal components
/// (and `.`), at least one of them, no backslash tricks on any platform.
fn stays_inside(shard: &str) -> bool {
    if shard.is_empty() || shard.contains('\\') || shard.contains('\0') {
        return false;
    }
    let mut normal = 0;
    for component in Path::new(shard).components() {
        match component {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    normal > 0
}
