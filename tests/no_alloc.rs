//! Push, merge, fit and encode allocate nothing: a counting global allocator watches them.
//!
//! Only allocations made by the test's own thread while counting is switched on are counted,
//! so the test harness's other threads cannot disturb the count.

use npmk::{Dtype, Sketch, Trim};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Const-initialised cells: reading them inside the allocator never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as for alloc; `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_hot_path_allocates_nothing() {
    // Everything that may allocate happens before the first reading.
    let f32s: Vec<f32> = (0..100_000).map(|i| ((i as f32) * 0.618).sin() * 0.02).collect();
    let bytes: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
    let misaligned = &bytes[..]; // re-sliced at an odd offset below
    let bf16: Vec<u16> = f32s.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
    let f16: Vec<half::f16> = f32s.iter().map(|&v| half::f16::from_f32(v)).collect();
    let mut a = Sketch::new_boxed();
    let mut b = Sketch::new_boxed();
    let mut buffer = vec![0u8; npmk::codec::MAX_ENCODED_LEN];
    let _ = npmk::Path::current();
    let _ = npmk::simd_level();

    COUNTING.with(|c| c.set(true));
    a.push_f32(&f32s);
    a.push_bf16(&bf16);
    a.push_f16(&f16);
    a.push_le_bytes(Dtype::F32, &bytes).unwrap();
    a.push_le_bytes(Dtype::BF16, &misaligned[1..2001]).unwrap();
    b.push_bf16(&bf16);
    a.merge(&b);
    let fits = [Trim::MID80, Trim::MID90, Trim::FULL].map(|t| a.fit(t).unwrap().k);
    let exact = b.fit(Trim::FULL).unwrap().k;
    let compat = npmk::compat::fit(&a, Trim::MID80).unwrap().k;
    let q = a.quantile(0.5).unwrap();
    let written = a.encode_into(&mut buffer).unwrap();
    b.decode_into(&buffer[..written]).unwrap();
    COUNTING.with(|c| c.set(false));

    let allocations = ALLOCATIONS.with(Cell::get);
    assert_eq!(allocations, 0, "the hot path allocated {allocations} times");
    assert!(fits.iter().all(|k| k.is_finite()) && exact.is_finite() && compat.is_finite());
    assert!(q > 0.0 && *a == *b);
}
