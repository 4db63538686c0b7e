//! The checkpoint reader on arbitrary and mutated bytes: it never panics, and whatever it
//! accepts is a consistent layout. (The cargo-fuzz target in `fuzz/` does the same for longer.)

mod st;
use npmk::checkpoint::{parse_index, parse_safetensors, CheckpointError};
use proptest::prelude::*;
use st::*;
use std::path::Path;

/// A valid two-tensor file to mutate.
fn seed() -> Vec<u8> {
    let h = header(&[entry("a", "F32", &[2, 2], 0, 16), entry("b", "BF16", &[3], 16, 22)]);
    file_bytes(&h, &[7u8; 22])
}

/// What every accepted file must satisfy; every rejection must be one line naming the file.
fn check(bytes: &[u8]) {
    let file = Path::new("fuzz.safetensors");
    match parse_safetensors(file, bytes) {
        Ok(tensors) => {
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let mut spans: Vec<(usize, usize)> = tensors.iter().map(|t| (t.start, t.end)).collect();
            spans.sort_unstable();
            let mut cursor = 8 + n;
            for (start, end) in spans {
                assert_eq!(start, cursor, "tensors must tile the data");
                assert!(end >= start && end <= bytes.len());
                cursor = end;
            }
            assert_eq!(cursor, bytes.len());
            assert!(safetensors::SafeTensors::deserialize(bytes).is_ok());
        }
        Err(e) => one_line(&e),
    }
}

fn one_line(e: &CheckpointError) {
    let text = e.to_string();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
    assert!(text.starts_with(&e.file().display().to_string()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&bytes);
        if let Err(e) = parse_index(Path::new("i.json"), &bytes) {
            one_line(&e);
        }
    }

    #[test]
    fn mutated_valid_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seed();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        check(&bytes);
    }
}

#[test]
fn the_seed_itself_is_accepted() {
    let tensors = parse_safetensors(Path::new("seed"), &seed()).unwrap();
    assert_eq!(tensors.len(), 2);
    assert_eq!(tensors.iter().map(|t| t.numel).sum::<u64>(), 7);
}
