//! Any bytes as G-code: segmentation never panics, and its segments cover every byte exactly
//! once, in order, none empty, with layers numbered 1..N.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_gcode::{SegmentKind, segment};

fuzz_target!(|data: &[u8]| {
    let segmentation = segment(data);
    let mut at = 0u64;
    let mut layer = 0u32;
    for s in &segmentation.segments {
        assert_eq!(s.start, at, "segments are contiguous");
        assert!(s.end > s.start, "no empty segment");
        if s.kind == SegmentKind::Layer {
            layer += 1;
            assert_eq!(s.layer, Some(layer), "layers are numbered 1..N");
        }
        at = s.end;
    }
    assert_eq!(at, data.len() as u64, "every byte is in a segment");
});
