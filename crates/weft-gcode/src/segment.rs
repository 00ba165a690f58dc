//! Layer segmentation: a G-code file cut into a preamble, layers 1..N in print order and a
//! postamble, every byte in exactly one segment.
//!
//! The slicer's own layer markers win when present; otherwise the motion state is interpreted
//! (G90/G91, G20/G21, G92, M82/M83) and a layer starts at the first *extruding* move at a new
//! height, so Z-hops and travel moves never start layers.

use serde::Serialize;

/// What a segment is.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum SegmentKind {
    Preamble = 0,
    Layer = 1,
    Postamble = 2,
}

impl SegmentKind {
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::Preamble => "preamble",
            SegmentKind::Layer => "layer",
            SegmentKind::Postamble => "postamble",
        }
    }
}

/// One segment: a byte range of the file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segment {
    pub kind: SegmentKind,
    /// 1-based layer number (layers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    /// Height in millimetres: as the slicer declares it, else where the layer first extrudes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    pub start: u64,
    pub end: u64,
    pub lines: u64,
}

/// How the layers were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The slicer's markers of this family.
    Markers(MarkerFamily),
    /// Extruding moves at new heights.
    Motion,
    /// No layers: the whole file is the preamble.
    None,
}

/// The layer markers of one slicer family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerFamily {
    /// PrusaSlicer, SuperSlicer, OrcaSlicer (non-Bambu): `;LAYER_CHANGE`.
    LayerChange,
    /// Cura, ideaMaker: `;LAYER:n`.
    CuraLayer,
    /// BambuStudio, OrcaSlicer for Bambu printers: `; CHANGE_LAYER`.
    BambuChangeLayer,
    /// Simplify3D: `; layer n, Z = z`.
    Simplify3d,
    /// Resin (ChiTuBox style): `;LAYER_START:n`.
    LayerStart,
    /// Resin (NovaMaker): `;<Slice> n` (its `;<Slice> Blank` lines are not layers).
    Slice,
    /// Skeinforge: `(<layer> z )`.
    Skeinforge,
}

const FAMILIES: [MarkerFamily; 7] = [
    MarkerFamily::LayerChange,
    MarkerFamily::CuraLayer,
    MarkerFamily::BambuChangeLayer,
    MarkerFamily::Simplify3d,
    MarkerFamily::LayerStart,
    MarkerFamily::Slice,
    MarkerFamily::Skeinforge,
];

/// A recognised marker line: its family, its layer number if it carries one, and the height it
/// declares if it does.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Marker {
    family: MarkerFamily,
    number: Option<i64>,
    z: Option<f64>,
}

fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(text.len(), |(i, _)| i);
    text[..end].parse().ok()
}

fn parse_float(text: &str) -> Option<f64> {
    let text = text.trim_start();
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    text[..end]
        .parse()
        .ok()
        .filter(|value: &f64| value.is_finite())
}

fn marker(line: &str) -> Option<Marker> {
    let line = line.trim_start();
    let make = |family, number, z| Some(Marker { family, number, z });
    if let Some(rest) = line.strip_prefix(";LAYER_CHANGE") {
        return rest.trim().is_empty().then_some(Marker {
            family: MarkerFamily::LayerChange,
            number: None,
            z: None,
        });
    }
    if let Some(rest) = line.strip_prefix(";LAYER:") {
        return parse_int(rest).and_then(|n| make(MarkerFamily::CuraLayer, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix("; CHANGE_LAYER") {
        return rest.trim().is_empty().then_some(Marker {
            family: MarkerFamily::BambuChangeLayer,
            number: None,
            z: None,
        });
    }
    if let Some(rest) = line.strip_prefix(";LAYER_START:") {
        return parse_int(rest).and_then(|n| make(MarkerFamily::LayerStart, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix(";<Slice>") {
        return parse_int(rest).and_then(|n| make(MarkerFamily::Slice, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix("(<layer>") {
        return make(MarkerFamily::Skeinforge, None, parse_float(rest));
    }
    // Simplify3D: "; layer 12, Z = 2.600"
    if line.len() > 8 && line[..8].eq_ignore_ascii_case("; layer ") {
        let rest = &line[8..];
        let number = parse_int(rest)?;
        let z = rest
            .find(['Z', 'z'])
            .and_then(|at| rest[at + 1..].trim_start().strip_prefix('='))
            .and_then(parse_float);
        return make(MarkerFamily::Simplify3d, Some(number), z);
    }
    None
}

/// A height the slicer declares on a comment line inside a layer.
fn declared_z(line: &str) -> Option<f64> {
    let line = line.trim_start();
    for prefix in [";Z:", "; Z_HEIGHT:", ";currPos:"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return parse_float(rest);
        }
    }
    None
}

/// The motion state the fallback, the heights and the postamble need.
#[derive(Clone, Debug)]
struct Motion {
    relative_xyz: bool,
    relative_e: bool,
    scale: f64,
    z: f64,
    e: f64,
}

impl Default for Motion {
    fn default() -> Self {
        Motion {
            relative_xyz: false,
            relative_e: false,
            scale: 1.0,
            z: 0.0,
            e: 0.0,
        }
    }
}

/// What one line did to the motion state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Effect {
    /// Z changed (to the state's new `z`).
    z_changed: bool,
    /// A move that lays down material: E advances with XY motion (or an arc).
    extrudes: bool,
}

/// The code part of a line: before any `;` comment, with `( … )` comments removed.
fn code_of(line: &str) -> std::borrow::Cow<'_, str> {
    let code = line.split(';').next().unwrap_or("");
    if !code.contains('(') {
        return std::borrow::Cow::Borrowed(code);
    }
    let mut out = String::with_capacity(code.len());
    let mut depth = 0usize;
    for c in code.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Splits code into (letter, value text) words: "G1X10.5 Y2" → G 1, X 10.5, Y 2.
fn words(code: &str) -> impl Iterator<Item = (u8, &str)> {
    let bytes = code.as_bytes();
    let mut at = 0usize;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let c = bytes[at];
            if c.is_ascii_alphabetic() {
                let letter = c.to_ascii_uppercase();
                at += 1;
                while at < bytes.len() && bytes[at] == b' ' {
                    at += 1;
                }
                let start = at;
                while at < bytes.len()
                    && (bytes[at].is_ascii_digit() || matches!(bytes[at], b'.' | b'-' | b'+'))
                {
                    at += 1;
                }
                return Some((letter, &code[start..at]));
            }
            at += 1;
        }
        None
    })
}

impl Motion {
    fn apply(&mut self, line: &str) -> Effect {
        let code = code_of(line);
        let mut effect = Effect::default();
        let mut command: Option<(u8, u32)> = None;
        let (mut x, mut y, mut z, mut e) = (None, None, None, None);
        let mut arc_offsets = false;
        for (letter, value) in words(&code) {
            match letter {
                b'G' | b'M' if command.is_none() => {
                    let number = value.split('.').next().and_then(|n| n.parse().ok());
                    command = number.map(|n| (letter, n));
                }
                b'X' => x = parse_float(value),
                b'Y' => y = parse_float(value),
                b'Z' => z = parse_float(value),
                b'E' => e = parse_float(value),
                b'I' | b'J' | b'R' => arc_offsets = true,
                _ => {}
            }
        }
        match command {
            Some((b'G', 0..=3)) => {
                let arc = matches!(command, Some((_, 2 | 3)));
                if let Some(z) = z {
                    let z = z * self.scale;
                    let new = if self.relative_xyz { self.z + z } else { z };
                    if (new - self.z).abs() > 1e-9 {
                        effect.z_changed = true;
                    }
                    self.z = new;
                }
                if let Some(e) = e {
                    let e = e * self.scale;
                    let advance = if self.relative_e { e } else { e - self.e };
                    self.e = if self.relative_e { self.e + e } else { e };
                    let moves_xy = x.is_some() || y.is_some() || (arc && arc_offsets);
                    effect.extrudes = advance > 1e-9 && moves_xy;
                }
            }
            Some((b'G', 20)) => self.scale = 25.4,
            Some((b'G', 21)) => self.scale = 1.0,
            Some((b'G', 90)) => {
                self.relative_xyz = false;
                self.relative_e = false;
            }
            Some((b'G', 91)) => {
                self.relative_xyz = true;
                self.relative_e = true;
            }
            Some((b'G', 92)) => {
                if x.is_none() && y.is_none() && z.is_none() && e.is_none() {
                    self.e = 0.0;
                    self.z = 0.0;
                }
                if let Some(e) = e {
                    self.e = e * self.scale;
                }
                if let Some(z) = z {
                    self.z = z * self.scale;
                }
            }
            Some((b'M', 82)) => self.relative_e = false,
            Some((b'M', 83)) => self.relative_e = true,
            _ => {}
        }
        effect
    }
}

/// One line of the file: its byte range (with its line end) and its text without the line end.
#[derive(Clone, Copy, Debug)]
struct Line {
    start: usize,
    text_end: usize,
}

fn lines(bytes: &[u8]) -> Vec<Line> {
    let mut out = Vec::with_capacity(bytes.len() / 24 + 1);
    let mut start = 0usize;
    while start < bytes.len() {
        let end = memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |at| start + at + 1);
        let mut text_end = end;
        if text_end > start && bytes[text_end - 1] == b'\n' {
            text_end -= 1;
        }
        if text_end > start && bytes[text_end - 1] == b'\r' {
            text_end -= 1;
        }
        out.push(Line { start, text_end });
        start = end;
    }
    out
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// The segments of a file, and how its layers were found.
#[derive(Clone, Debug, Serialize)]
pub struct Segmentation {
    pub method: Method,
    pub segments: Vec<Segment>,
}

impl Segmentation {
    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.segments
            .iter()
            .filter(|segment| segment.kind == SegmentKind::Layer)
            .count()
    }
}

/// Cuts `bytes` into segments. Never fails: a file with no layers is one preamble; an empty
/// file has no segments.
pub fn segment(bytes: &[u8]) -> Segmentation {
    let lines = lines(bytes);
    let text = |line: &Line| std::str::from_utf8(&bytes[line.start..line.text_end]).unwrap_or("");

    // Pass 1: the motion state after every line, and which marker family dominates.
    let mut motion = Motion::default();
    let mut effects = Vec::with_capacity(lines.len());
    let mut heights = Vec::with_capacity(lines.len());
    let mut markers: Vec<Option<Marker>> = Vec::with_capacity(lines.len());
    let mut counts = [0usize; FAMILIES.len()];
    // Heights declared on comment lines (`;Z:` …), in line order, so no pass reads lines again.
    let mut declared_lines: Vec<(usize, f64)> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let text = text(line);
        let comment = text.trim_start().starts_with([';', '(']);
        let found = if comment { marker(text) } else { None };
        if comment && let Some(z) = declared_z(text) {
            declared_lines.push((index, z));
        }
        if let Some(found) = found {
            counts[FAMILIES
                .iter()
                .position(|family| *family == found.family)
                .unwrap_or(0)] += 1;
        }
        markers.push(found);
        effects.push(motion.apply(text));
        heights.push(motion.z);
    }
    let family = counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .max_by_key(|(index, count)| (**count, std::cmp::Reverse(*index)))
        .map(|(index, _)| FAMILIES[index]);

    // Pass 2: where layers start.
    let mut starts: Vec<usize> = Vec::new();
    let method = match family {
        Some(family) => {
            let mut previous: Option<(usize, Option<i64>)> = None;
            for (index, found) in markers.iter().enumerate() {
                let Some(found) = found.filter(|found| found.family == family) else {
                    continue;
                };
                // A numbered marker repeated with only blank lines between is one marker. A
                // repeat with anything between is a layer of its own: that is what a duplicated
                // layer looks like, and it must be reported as an insertion (resin layers are
                // comments only, so comments count as content).
                if let Some((at, number)) = previous
                    && found.number.is_some()
                    && found.number == number
                    && (at + 1..index).all(|i| text(&lines[i]).trim().is_empty())
                {
                    continue;
                }
                previous = Some((index, found.number));
                starts.push(index);
            }
            Method::Markers(family)
        }
        None => {
            let mut layer_z: Option<f64> = None;
            let mut last_extrusion: Option<usize> = None;
            let mut last_z_change: Option<usize> = None;
            for (index, effect) in effects.iter().enumerate() {
                if effect.z_changed {
                    last_z_change = Some(index);
                }
                if !effect.extrudes {
                    continue;
                }
                let z = heights[index];
                if layer_z.is_none_or(|current| (current - z).abs() > 1e-6) {
                    // Start at the move that brought the nozzle to this height, if it came after
                    // the previous layer's last extrusion; else at this extruding move.
                    let start = match (last_z_change, last_extrusion) {
                        (Some(change), Some(last)) if change > last => change,
                        (Some(change), None) => change,
                        _ => index,
                    };
                    starts.push(start);
                    layer_z = Some(z);
                }
                last_extrusion = Some(index);
            }
            if starts.is_empty() {
                Method::None
            } else {
                Method::Motion
            }
        }
    };

    let mut segments = Vec::new();
    let byte_at = |line: usize| lines.get(line).map_or(bytes.len(), |l| l.start) as u64;
    let first = starts.first().copied().unwrap_or(lines.len());
    if first > 0 {
        segments.push(Segment {
            kind: SegmentKind::Preamble,
            layer: None,
            z: None,
            start: 0,
            end: byte_at(first),
            lines: first as u64,
        });
    }
    if starts.is_empty() {
        return Segmentation { method, segments };
    }
    // The last layer ends after its last extruding move or its ";LAYER_END", whichever is later;
    // with neither, it runs to the end of the file.
    let last_start = *starts.last().unwrap_or(&0);
    let mut last_end = None;
    for (index, line) in lines.iter().enumerate().skip(last_start) {
        if effects[index].extrudes || text(line).trim() == ";LAYER_END" {
            last_end = Some(index + 1);
        }
    }
    let last_end = last_end.unwrap_or(lines.len());
    for (number, window) in starts.iter().enumerate() {
        let start = *window;
        let end = starts.get(number + 1).copied().unwrap_or(last_end);
        let first_declared = declared_lines.partition_point(|&(line, _)| line < start);
        let declared = markers[start].and_then(|found| found.z).or_else(|| {
            declared_lines
                .get(first_declared)
                .filter(|&&(line, _)| line < end)
                .map(|&(_, z)| z)
        });
        let extruded = (start..end)
            .find(|&i| effects[i].extrudes)
            .map(|i| heights[i]);
        segments.push(Segment {
            kind: SegmentKind::Layer,
            layer: Some(number as u32 + 1),
            z: declared.or(extruded).map(|z| (z * 1e6).round() / 1e6),
            start: byte_at(start),
            end: byte_at(end),
            lines: (end - start) as u64,
        });
    }
    if last_end < lines.len() {
        segments.push(Segment {
            kind: SegmentKind::Postamble,
            layer: None,
            z: None,
            start: byte_at(last_end),
            end: bytes.len() as u64,
            lines: (lines.len() - last_end) as u64,
        });
    }
    Segmentation { method, segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_cover(bytes: &[u8], segmentation: &Segmentation) {
        let mut at = 0u64;
        for segment in &segmentation.segments {
            assert_eq!(segment.start, at, "{segmentation:?}");
            assert!(segment.end > segment.start, "empty segment {segment:?}");
            at = segment.end;
        }
        assert_eq!(at, bytes.len() as u64);
    }

    #[test]
    fn empty_file_has_no_segments() {
        let s = segment(b"");
        assert!(s.segments.is_empty());
        assert_eq!(s.method, Method::None);
    }

    #[test]
    fn no_layers_is_one_preamble_even_without_final_newline() {
        let bytes = b"G21\nG90\nG0 X10 Y10\nM5";
        let s = segment(bytes);
        check_cover(bytes, &s);
        assert_eq!(s.layers(), 0);
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.segments[0].kind, SegmentKind::Preamble);
        assert_eq!(s.segments[0].lines, 4);
    }

    #[test]
    fn z_hops_do_not_start_layers() {
        let bytes = b"G90\nM82\nG1 Z0.2\nG1 X1 Y1 E1\nG1 Z0.6\nG0 X5\nG1 Z0.2\nG1 X6 E2\nG1 Z0.4\nG1 X7 E3\nG1 Z10\nM84\n";
        let s = segment(bytes);
        check_cover(bytes, &s);
        assert_eq!(s.method, Method::Motion);
        assert_eq!(s.layers(), 2, "{s:?}");
        assert_eq!(s.segments[1].z, Some(0.2));
        assert_eq!(s.segments[2].z, Some(0.4));
        assert_eq!(
            s.segments.last().map(|x| x.kind),
            Some(SegmentKind::Postamble)
        );
    }

    #[test]
    fn relative_moves_inches_and_crlf() {
        let bytes = b"G20\r\nG91\r\nG1 Z0.01\r\nG1 X1 E0.1\r\nG1 Z0.01\r\nG1 X1 E0.1\r\n";
        let s = segment(bytes);
        check_cover(bytes, &s);
        assert_eq!(s.layers(), 2, "{s:?}");
        assert_eq!(s.segments[1].z, Some(0.254));
        assert_eq!(s.segments[2].z, Some(0.508));
    }

    #[test]
    fn a_marker_repeated_on_the_next_line_is_one_layer_with_code_between_two() {
        let once = b";LAYER:0\n\n;LAYER:0\nG1 X1 E1\n;LAYER:1\nG1 X3 E3\n";
        let s = segment(once);
        check_cover(once, &s);
        assert_eq!(s.layers(), 2);
        let twice = b";LAYER:0\nG1 X1 E1\n;LAYER:0\nG1 X2 E2\n;LAYER:1\nG1 X3 E3\n";
        assert_eq!(segment(twice).layers(), 3);
    }

    #[test]
    fn retraction_and_e_only_moves_do_not_extrude() {
        let bytes = b"M83\nG1 Z0.2\nG1 E5\nG1 X1 E-1\nG1 X2 E1\n";
        let s = segment(bytes);
        assert_eq!(s.layers(), 1);
        assert_eq!(
            s.segments[1].start, 4,
            "the layer starts at its Z move: {s:?}"
        );
    }
}
