//! weft G-code protection (see DESIGN.md, "G-code protection", and docs/gcode.md).
//!
//! - [`segment`]: a file cut into preamble, layers and postamble.

pub mod segment;

pub use segment::{Method, Segment, SegmentKind, Segmentation, segment};
pub mod container;
pub mod error;
pub mod keys;
pub mod manifest;
pub mod open;
pub mod verify;
