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
    Hash,
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

impl Segment {
    /// The height in micrometres, as the manifest and the container record it, and as
    /// verification compares a received segment's height with the manifest's.
    pub fn z_um(&self) -> Option<i64> {
        self.z.map(|z| (z * 1000.0).round() as i64)
    }
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

/// Powers of ten a decimal with up to 18 digits divides by exactly.
const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// A G-code number as scanned: an optional sign, digits and at most one decimal point.
#[derive(Clone, Copy, Debug, Default)]
struct Scanned {
    negative: bool,
    mantissa: u64,
    digits: usize,
    /// Digits after the decimal point.
    places: usize,
    /// Well formed: at least one digit, at most one point, a sign only first.
    valid: bool,
}

/// Scans the run of number characters (digits, `.`, `+`, `-`) that starts at `at`, parsing as it
/// goes; returns where the run ends.
#[inline(always)]
fn scan_number(line: &[u8], mut at: usize) -> (usize, Scanned) {
    let mut scanned = Scanned {
        valid: true,
        ..Scanned::default()
    };
    if let Some(&sign) = line.get(at)
        && (sign == b'-' || sign == b'+')
    {
        scanned.negative = sign == b'-';
        at += 1;
    }
    let mut point = false;
    while let Some(&byte) = line.get(at) {
        let digit = byte.wrapping_sub(b'0');
        if digit < 10 {
            scanned.mantissa = scanned
                .mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(digit));
            scanned.digits += 1;
            scanned.places += usize::from(point);
        } else if byte == b'.' {
            scanned.valid &= !point;
            point = true;
        } else if byte == b'-' || byte == b'+' {
            scanned.valid = false;
        } else {
            break;
        }
        at += 1;
    }
    scanned.valid &= scanned.digits > 0;
    (at, scanned)
}

impl Scanned {
    /// The value; `text` is the scanned run, parsed by the standard parser when it has more
    /// than 15 digits. Up to 15 digits the result is the correctly rounded value: one exact
    /// integer divided by an exact power of ten.
    #[inline(always)]
    fn value(&self, text: &[u8]) -> Option<f64> {
        if !self.valid {
            return None;
        }
        if self.digits > 15 {
            return std::str::from_utf8(text).ok()?.parse::<f64>().ok();
        }
        let value = self.mantissa as f64 / POW10[self.places];
        Some(if self.negative { -value } else { value })
    }

    /// The whole part of a non-negative number (`G92.1` is command 92).
    #[inline(always)]
    fn whole(&self) -> Option<u32> {
        if !self.valid || self.negative || self.digits > 15 {
            return None;
        }
        let divisor = 10u64.pow(self.places as u32);
        u32::try_from(self.mantissa / divisor).ok()
    }
}

/// Parses a whole G-code number ("-1.5", "+.25", "10."): anything else in `text`, or no digit at
/// all, gives `None`.
fn parse_number(text: &[u8]) -> Option<f64> {
    let (end, scanned) = scan_number(text, 0);
    if end != text.len() {
        return None;
    }
    scanned.value(text)
}

/// The longest run of number characters at the start of `text`, after leading spaces, parsed.
fn leading_number(text: &[u8], integer: bool) -> Option<f64> {
    let text = trim_start(text);
    let end = text
        .iter()
        .enumerate()
        .position(|(i, &c)| {
            !(c.is_ascii_digit() || (!integer && c == b'.') || (i == 0 && (c == b'-' || c == b'+')))
        })
        .unwrap_or(text.len());
    parse_number(&text[..end]).filter(|value| value.is_finite())
}

fn leading_int(text: &[u8]) -> Option<i64> {
    leading_number(text, true)
        .filter(|value| value.abs() < 1e15)
        .map(|value| value as i64)
}

fn trim_start(text: &[u8]) -> &[u8] {
    let skip = text
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(text.len());
    &text[skip..]
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// Recognises a marker on a comment line (`line` starts at its first non-blank byte).
fn marker(line: &[u8]) -> Option<Marker> {
    let make = |family, number, z| Some(Marker { family, number, z });
    if let Some(rest) = line.strip_prefix(b";LAYER_CHANGE") {
        return if is_blank(rest) {
            make(MarkerFamily::LayerChange, None, None)
        } else {
            None
        };
    }
    if let Some(rest) = line.strip_prefix(b";LAYER:") {
        return leading_int(rest).and_then(|n| make(MarkerFamily::CuraLayer, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix(b"; CHANGE_LAYER") {
        return if is_blank(rest) {
            make(MarkerFamily::BambuChangeLayer, None, None)
        } else {
            None
        };
    }
    if let Some(rest) = line.strip_prefix(b";LAYER_START:") {
        return leading_int(rest).and_then(|n| make(MarkerFamily::LayerStart, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix(b";<Slice>") {
        return leading_int(rest).and_then(|n| make(MarkerFamily::Slice, Some(n), None));
    }
    if let Some(rest) = line.strip_prefix(b"(<layer>") {
        return make(MarkerFamily::Skeinforge, None, leading_number(rest, false));
    }
    // Simplify3D: "; layer 12, Z = 2.600"
    if line.len() > 8 && line[..8].eq_ignore_ascii_case(b"; layer ") {
        let rest = &line[8..];
        let number = leading_int(rest)?;
        let z = rest
            .iter()
            .position(|&c| c == b'Z' || c == b'z')
            .and_then(|at| trim_start(&rest[at + 1..]).strip_prefix(b"="))
            .and_then(|value| leading_number(value, false));
        return make(MarkerFamily::Simplify3d, Some(number), z);
    }
    None
}

/// A height the slicer declares on a comment line inside a layer (`line` starts at its first
/// non-blank byte).
fn declared_z(line: &[u8]) -> Option<f64> {
    for prefix in [&b";Z:"[..], b"; Z_HEIGHT:", b";currPos:"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return leading_number(rest, false);
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

impl Motion {
    /// Applies one line's code: the words before any `;` comment, outside `( … )` comments.
    /// "G1X10.5 Y2" reads as G 1, X 10.5, Y 2. Only what the state needs is parsed: X and Y
    /// count by their presence (a digit after the letter), Z and E by their values.
    fn apply(&mut self, line: &[u8]) -> Effect {
        let mut effect = Effect::default();
        let mut command: Option<(u8, u32)> = None;
        let (mut has_xy, mut z, mut e) = (false, None, None);
        let mut arc_offsets = false;
        let mut depth = 0usize;
        let mut at = 0usize;
        while at < line.len() {
            let c = line[at];
            at += 1;
            match c {
                b';' if depth == 0 => break,
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ if depth > 0 || !c.is_ascii_alphabetic() => {}
                _ => {
                    while at < line.len() && line[at] == b' ' {
                        at += 1;
                    }
                    let start = at;
                    let (end, number) = scan_number(line, at);
                    at = end;
                    match c.to_ascii_uppercase() {
                        letter @ (b'G' | b'M') if command.is_none() => {
                            command = number.whole().map(|n| (letter, n));
                            // Only these commands touch the state: stop reading any other.
                            if !matches!(
                                command,
                                None | Some((b'G', 0..=3 | 20 | 21 | 90 | 91 | 92))
                                    | Some((b'M', 82 | 83))
                            ) {
                                return effect;
                            }
                        }
                        b'X' | b'Y' => has_xy |= number.digits > 0,
                        b'Z' => z = number.value(&line[start..end]),
                        b'E' => e = number.value(&line[start..end]),
                        b'I' | b'J' | b'R' => arc_offsets = true,
                        _ => {}
                    }
                }
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
                    let moves_xy = has_xy || (arc && arc_offsets);
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
                if !has_xy && z.is_none() && e.is_none() {
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

/// A line: its index and the byte where it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct At {
    line: usize,
    byte: usize,
}

/// A marker line found in the first pass.
#[derive(Clone, Copy, Debug)]
struct Found {
    at: At,
    marker: Marker,
    /// The last non-blank line before this one, if any.
    content_before: Option<usize>,
    /// The first extruding move on or after this line, and its height.
    first_extrusion: Option<(usize, f64)>,
}

/// What the first pass keeps: sparse lists of the lines that matter, in line order, so no later
/// pass reads the text again and memory does not grow with the number of lines.
#[derive(Default)]
struct Scan {
    lines: usize,
    markers: Vec<Found>,
    /// Where a layer starts by motion: the move that brought the nozzle to a new extrusion
    /// height (if it came after the last extrusion at the old one), else the first extruding
    /// move there; with that height.
    motion_starts: Vec<(At, f64)>,
    /// Heights declared on comment lines (`;Z:` …).
    declared: Vec<(usize, f64)>,
    /// The last extruding move and the last `;LAYER_END` line: (line, byte after it).
    last_extrusion: Option<(usize, usize)>,
    last_layer_end: Option<(usize, usize)>,
}

fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut motion = Motion::default();
    let mut content_before: Option<usize> = None;
    // Markers still waiting for their first extrusion start here in `scan.markers`.
    let mut awaiting_extrusion = 0usize;
    let mut layer_z: Option<f64> = None;
    let mut last_z_change: Option<At> = None;
    let mut start = 0usize;
    while start < bytes.len() {
        let here = At {
            line: scan.lines,
            byte: start,
        };
        scan.lines += 1;
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |at| start + at + 1);
        let text = trim_start(&bytes[start..end]);
        start = end;
        let Some(&first) = text.first() else {
            continue;
        };
        // Comment lines may be markers; `;` lines are comments only, `(` lines may hold code
        // after the comment.
        if first == b';' || first == b'(' {
            if let Some(found) = marker(text) {
                scan.markers.push(Found {
                    at: here,
                    marker: found,
                    content_before,
                    first_extrusion: None,
                });
            } else if first == b';' {
                if let Some(z) = declared_z(text) {
                    scan.declared.push((here.line, z));
                } else if text.starts_with(b";LAYER_END") && is_blank(&text[10..]) {
                    scan.last_layer_end = Some((here.line, end));
                }
            }
        }
        if first != b';' {
            let effect = motion.apply(text);
            if effect.z_changed {
                last_z_change = Some(here);
            }
            if effect.extrudes {
                let z = motion.z;
                for found in &mut scan.markers[awaiting_extrusion..] {
                    found.first_extrusion = Some((here.line, z));
                }
                awaiting_extrusion = scan.markers.len();
                if layer_z.is_none_or(|current| (current - z).abs() > 1e-6) {
                    let previous = scan.last_extrusion.map(|(line, _)| line);
                    let start = match (last_z_change, previous) {
                        (Some(change), Some(last)) if change.line > last => change,
                        (Some(change), None) => change,
                        _ => here,
                    };
                    scan.motion_starts.push((start, z));
                    layer_z = Some(z);
                }
                scan.last_extrusion = Some((here.line, end));
            }
        }
        content_before = Some(here.line);
    }
    scan
}

/// Cuts `bytes` into segments. Never fails: a file with no layers is one preamble; an empty
/// file has no segments.
pub fn segment(bytes: &[u8]) -> Segmentation {
    let scan = scan(bytes);
    let line_count = scan.lines;

    let mut counts = [0usize; FAMILIES.len()];
    for found in &scan.markers {
        counts[FAMILIES
            .iter()
            .position(|family| *family == found.marker.family)
            .unwrap_or(0)] += 1;
    }
    let family = counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .max_by_key(|(index, count)| (**count, std::cmp::Reverse(*index)))
        .map(|(index, _)| FAMILIES[index]);

    // Where layers start, with the height a marker declares and the first extrusion on or after
    // the start.
    struct Start {
        at: At,
        marked_z: Option<f64>,
        first_extrusion: Option<(usize, f64)>,
    }
    let mut starts: Vec<Start> = Vec::new();
    let method = match family {
        Some(family) => {
            let mut previous: Option<(usize, Option<i64>)> = None;
            for found in scan.markers.iter().filter(|f| f.marker.family == family) {
                // A numbered marker repeated with only blank lines between is one marker. A
                // repeat with anything between is a layer of its own: that is what a duplicated
                // layer looks like, and it must be reported as an insertion (resin layers are
                // comments only, so comments count as content).
                if let Some((at, number)) = previous
                    && found.marker.number.is_some()
                    && found.marker.number == number
                    && found.content_before.is_none_or(|content| content <= at)
                {
                    continue;
                }
                previous = Some((found.at.line, found.marker.number));
                starts.push(Start {
                    at: found.at,
                    marked_z: found.marker.z,
                    first_extrusion: found.first_extrusion,
                });
            }
            Method::Markers(family)
        }
        None => {
            // The first extrusion of a motion layer is the move that reached its height.
            starts.extend(scan.motion_starts.iter().map(|&(at, z)| Start {
                at,
                marked_z: None,
                first_extrusion: Some((at.line, z)),
            }));
            if starts.is_empty() {
                Method::None
            } else {
                Method::Motion
            }
        }
    };

    let mut segments = Vec::with_capacity(starts.len() + 2);
    let end_of_file = At {
        line: line_count,
        byte: bytes.len(),
    };
    let first = starts.first().map_or(end_of_file, |start| start.at);
    if first.line > 0 {
        segments.push(Segment {
            kind: SegmentKind::Preamble,
            layer: None,
            z: None,
            start: 0,
            end: first.byte as u64,
            lines: first.line as u64,
        });
    }
    let Some(last_start) = starts.last().map(|start| start.at) else {
        return Segmentation { method, segments };
    };
    // The last layer ends after its last extruding move or its ";LAYER_END", whichever is later;
    // with neither, it runs to the end of the file.
    let last_end = [scan.last_extrusion, scan.last_layer_end]
        .into_iter()
        .flatten()
        .filter(|&(line, _)| line >= last_start.line)
        .max()
        .map_or(end_of_file, |(line, byte)| At {
            line: line + 1,
            byte,
        });
    for (number, start) in starts.iter().enumerate() {
        let end = starts.get(number + 1).map_or(last_end, |next| next.at);
        let first_declared = scan
            .declared
            .partition_point(|&(line, _)| line < start.at.line);
        let declared = start.marked_z.or_else(|| {
            scan.declared
                .get(first_declared)
                .filter(|&&(line, _)| line < end.line)
                .map(|&(_, z)| z)
        });
        let extruded = start
            .first_extrusion
            .filter(|&(line, _)| line < end.line)
            .map(|(_, z)| z);
        segments.push(Segment {
            kind: SegmentKind::Layer,
            layer: Some(number as u32 + 1),
            z: declared.or(extruded).map(|z| (z * 1e6).round() / 1e6),
            start: start.at.byte as u64,
            end: end.byte as u64,
            lines: (end.line - start.at.line) as u64,
        });
    }
    if last_end.line < line_count {
        segments.push(Segment {
            kind: SegmentKind::Postamble,
            layer: None,
            z: None,
            start: last_end.byte as u64,
            end: bytes.len() as u64,
            lines: (line_count - last_end.line) as u64,
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
