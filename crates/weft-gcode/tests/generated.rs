//! Property tests over generated G-code: files of a known number of layers, written the many
//! ways slicers and machines write them (markers of every family or none, absolute or relative
//! extrusion and positioning, millimetres or inches, Z-hops, retractions, arcs, comments, CRLF,
//! no final newline), must segment into exactly those layers at exactly those heights, seal,
//! verify and open byte for byte, and any one changed byte must be caught.

use std::io::{Cursor, Read};

use proptest::prelude::*;
use weft_gcode::manifest::Manifest;
use weft_gcode::open::open_container;
use weft_gcode::verify::{verify_container, verify_plain};
use weft_gcode::{SegmentKind, Segmentation, segment};

/// How a generated file marks its layers.
#[derive(Clone, Copy, Debug)]
enum Markers {
    None,
    LayerChange,
    Cura,
    Bambu,
    Simplify3d,
}

/// The shape of one generated file.
#[derive(Clone, Debug)]
struct Shape {
    markers: Markers,
    layers: usize,
    moves_per_layer: usize,
    relative_e: bool,
    relative_xyz: bool,
    inches: bool,
    z_hops: bool,
    arcs: bool,
    comments: bool,
    crlf: bool,
    final_newline: bool,
    layer_height_um: u32,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop_oneof![
            Just(Markers::None),
            Just(Markers::LayerChange),
            Just(Markers::Cura),
            Just(Markers::Bambu),
            Just(Markers::Simplify3d),
        ],
        1usize..40,
        1usize..8,
        any::<[bool; 8]>(),
        prop_oneof![Just(100u32), Just(200), Just(250), Just(300)],
    )
        .prop_map(
            |(markers, layers, moves_per_layer, flags, layer_height_um)| Shape {
                markers,
                layers,
                moves_per_layer,
                relative_e: flags[0],
                // G91: relative positioning, which makes extrusion relative too.
                relative_xyz: flags[1],
                inches: flags[2],
                z_hops: flags[3],
                arcs: flags[4],
                comments: flags[5],
                crlf: flags[6],
                final_newline: flags[7],
                layer_height_um,
            },
        )
}

/// Writes the file, and returns it with the heights of its layers in millimetres.
fn write(shape: &Shape) -> (Vec<u8>, Vec<f64>) {
    let scale = if shape.inches { 25.4 } else { 1.0 };
    let mut lines: Vec<String> = vec![
        "; generated for weft's property tests".into(),
        if shape.inches { "G20" } else { "G21" }.into(),
        if shape.relative_xyz { "G91" } else { "G90" }.into(),
    ];
    // G91 makes extrusion relative as well; otherwise M82/M83 choose.
    let relative_e = shape.relative_xyz || shape.relative_e;
    if !shape.relative_xyz {
        lines.push(if relative_e { "M83" } else { "M82" }.into());
    }
    lines.push("G92 E0".into());
    lines.push("M104 S215".into());
    let mut z = 0.0f64;
    let mut e = 0.0f64;
    let mut heights = Vec::new();
    let fmt = |value: f64| format!("{:.6}", value / scale);
    for layer in 0..shape.layers {
        let new_z = f64::from(shape.layer_height_um) / 1000.0 * (layer + 1) as f64;
        match shape.markers {
            Markers::None => {}
            Markers::LayerChange => {
                lines.push(";LAYER_CHANGE".into());
                lines.push(format!(";Z:{new_z:.3}"));
            }
            Markers::Cura => lines.push(format!(";LAYER:{layer}")),
            Markers::Bambu => lines.push("; CHANGE_LAYER".into()),
            Markers::Simplify3d => lines.push(format!("; layer {}, Z = {new_z:.3}", layer + 1)),
        }
        let dz = if shape.relative_xyz { new_z - z } else { new_z };
        lines.push(format!("G1 Z{} F600", fmt(dz)));
        z = new_z;
        heights.push(new_z);
        for step in 0..shape.moves_per_layer {
            if shape.comments && step == 0 {
                lines.push(";TYPE:External perimeter".into());
            }
            let amount = 0.05 * (step + 1) as f64;
            let e_word = if relative_e { amount } else { e + amount };
            e += amount;
            let (x, y) = if shape.relative_xyz {
                (1.0, 0.5)
            } else {
                (10.0 + step as f64, 20.0 + layer as f64)
            };
            if shape.arcs && step % 3 == 2 {
                lines.push(format!(
                    "G2 X{} Y{} I1.0 J0.0 E{}",
                    fmt(x),
                    fmt(y),
                    fmt(e_word)
                ));
            } else {
                lines.push(format!("G1 X{} Y{} E{}", fmt(x), fmt(y), fmt(e_word)));
            }
        }
        // A retraction, and a Z-hop travel that goes back down: neither starts a layer.
        let retract = if relative_e { -0.8 } else { e - 0.8 };
        lines.push(format!("G1 E{} F2100", fmt(retract)));
        let unretract = if relative_e { 0.8 } else { e };
        if shape.z_hops {
            let (up, down) = if shape.relative_xyz {
                (0.4, -0.4)
            } else {
                (z + 0.4, z)
            };
            lines.push(format!("G1 Z{} F600", fmt(up)));
            lines.push(format!("G0 X{} Y{}", fmt(5.0), fmt(5.0)));
            lines.push(format!("G1 Z{}", fmt(down)));
        }
        lines.push(format!("G1 E{}", fmt(unretract)));
    }
    lines.push("M107".into());
    let lift = if shape.relative_xyz { 10.0 } else { z + 10.0 };
    lines.push(format!("G1 Z{}", fmt(lift)));
    lines.push("M84".into());
    let end = if shape.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(end);
    if shape.final_newline {
        text.push_str(end);
    }
    (text.into_bytes(), heights)
}

fn reader(bytes: &[u8]) -> impl FnMut() -> std::io::Result<Box<dyn Read>> + '_ {
    move || Ok(Box::new(Cursor::new(bytes.to_vec())) as Box<dyn Read>)
}

/// The segments follow each other without gap or overlap, none empty, and end at the file's end.
fn covers_every_byte(bytes: &[u8], s: &Segmentation) -> Result<(), TestCaseError> {
    let mut at = 0;
    for segment in &s.segments {
        prop_assert_eq!(segment.start, at);
        prop_assert!(segment.end > segment.start);
        at = segment.end;
    }
    prop_assert_eq!(at, bytes.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_files_segment_into_their_layers(shape in shape()) {
        let (bytes, heights) = write(&shape);
        let s = segment(&bytes);
        covers_every_byte(&bytes, &s)?;
        prop_assert_eq!(s.layers(), shape.layers, "{:?}", s);
        let found: Vec<f64> = s
            .segments
            .iter()
            .filter(|segment| segment.kind == SegmentKind::Layer)
            .map(|segment| segment.z.unwrap_or(f64::NAN))
            .collect();
        for (found, want) in found.iter().zip(&heights) {
            // Inches are written with six decimals: at most 0.013 µm of rounding per move.
            prop_assert!((found - want).abs() < 1e-3, "z {} for {}: {:?}", found, want, s);
        }
        prop_assert_eq!(
            s.segments.first().map(|x| x.kind),
            Some(SegmentKind::Preamble)
        );
        prop_assert_eq!(
            s.segments.last().map(|x| x.kind),
            Some(SegmentKind::Postamble),
            "the lift and M84 after the last extrusion are the postamble"
        );
    }

    #[test]
    fn generated_files_seal_verify_open_and_any_changed_byte_is_caught(
        shape in shape(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..7,
    ) {
        let (bytes, _) = write(&shape);
        let s = segment(&bytes);
        let mut container = Vec::new();
        let sealed = weft_gcode::container::seal(&bytes, &s.segments, &[], &mut container)
            .expect("seals");
        let manifest = Manifest::new("generated.gcode", &bytes, "test", &s.segments, &sealed);
        prop_assert!(verify_container(Cursor::new(&container), &manifest).expect("reads").intact());
        prop_assert!(verify_plain(reader(&bytes), &manifest, u64::MAX).expect("reads").intact());
        let mut out = Vec::new();
        open_container(reader(&container), &manifest, None, &mut out).expect("opens");
        prop_assert!(out == bytes);

        let mut changed = bytes.clone();
        let at = flip.index(changed.len());
        changed[at] ^= 1 << bit;
        let report = verify_plain(reader(&changed), &manifest, u64::MAX).expect("reads");
        prop_assert!(!report.intact(), "byte {} changed unnoticed", at);
        prop_assert!(!report.findings.is_empty() || !report.checks.dimension || !report.checks.chain);
    }

    #[test]
    fn any_bytes_segment_without_gaps(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let s = segment(&bytes);
        covers_every_byte(&bytes, &s)?;
    }
}
