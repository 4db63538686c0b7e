//! Fuzz the checkpoint reader: `parse_safetensors` and `parse_index` on arbitrary bytes.
//!
//! Neither may panic. An accepted file must tile its data section exactly and be accepted by
//! the safetensors crate too; every error must display as one line starting with the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use npmk::checkpoint::{parse_index, parse_safetensors, CheckpointError};
use std::path::Path;

fn one_line(e: &CheckpointError) {
    let text = e.to_string();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
    assert!(text.starts_with(&e.file().display().to_string()));
}

fuzz_target!(|bytes: &[u8]| {
    let file = Path::new("fuzz.safetensors");
    match parse_safetensors(file, bytes) {
        Ok(tensors) => {
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let mut spans: Vec<(usize, usize)> = tensors.iter().map(|t| (t.start, t.end)).collect();
            spans.sort_unstable();
            let mut cursor = 8 + n;
            for (start, end) in spans {
                assert_eq!(start, cursor);
                assert!(end >= start && end <= bytes.len());
                cursor = end;
            }
            assert_eq!(cursor, bytes.len());
            assert!(safetensors::SafeTensors::deserialize(bytes).is_ok());
        }
        Err(e) => one_line(&e),
    }
    if let Err(e) = parse_index(Path::new("model.safetensors.index.json"), bytes) {
        one_line(&e);
    }
});
