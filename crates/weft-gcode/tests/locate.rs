//! Where verification names a change: the layer a printer operator would go and look at. A
//! deleted layer is named `deleted` where it is missing, an inserted layer is placed where it is,
//! and the postamble is never named deleted while it is there, even when bytes move between
//! neighbours (a travel lift that reaches a later layer's height, the last layer's tail). Files
//! are generated here: motion-only G-code (and `;LAYER_CHANGE` markers where a case is not
//! particular to motion) with retractions and travel lifts of any height.

use std::io::{Cursor, Read};

use proptest::prelude::*;
use weft_gcode::manifest::Manifest;
use weft_gcode::segment;
use weft_gcode::verify::{FindingKind, Report, layer_map, verify_plain};

/// One layer of a generated file, in micrometres: its height, and how far above it the travel
/// that ends it lifts the nozzle (0: no lift).
#[derive(Clone, Copy, Debug)]
struct Layer {
    z_um: u32,
    lift_um: u32,
}

/// `count` layers `height_um` apart from `first_um` up, each ending with a lift of `lift_um`.
fn layers(count: usize, first_um: u32, height_um: u32, lift_um: u32) -> Vec<Layer> {
    (0..count as u32)
        .map(|i| Layer {
            z_um: first_um + i * height_um,
            lift_um,
        })
        .collect()
}

/// Writes a file the way slicers do: move to the layer's height, extrude, retract, lift, travel
/// to where the next layer starts, unretract. `markers` adds PrusaSlicer's `;LAYER_CHANGE`.
fn write(layers: &[Layer], markers: bool) -> Vec<u8> {
    let mm = |um: u32| format!("{:.3}", f64::from(um) / 1000.0);
    let mut text = String::from("; generated for weft's location tests\nG21\nG90\nM83\nG92 E0\n");
    for layer in layers {
        if markers {
            text += &format!(";LAYER_CHANGE\n;Z:{}\n", mm(layer.z_um));
        }
        text += &format!("G1 Z{} F720\n", mm(layer.z_um));
        for step in 0..3 {
            // Where a layer prints depends on its height alone: the same layer is the same
            // bytes whichever layers are around it.
            text += &format!("G1 X{} Y{} E0.05\n", 10 + step, mm(20_000 + layer.z_um));
        }
        text += "G1 E-0.8 F2100\n";
        if layer.lift_um > 0 {
            text += &format!("G1 Z{} F720\n", mm(layer.z_um + layer.lift_um));
        }
        text += "G0 X5 Y5 F9000\nG1 E0.8 F2100\n";
    }
    let top = layers.last().map_or(0, |layer| layer.z_um);
    text += &format!("M107\nG1 Z{} F720\nM84\n", mm(top + 10_000));
    text.into_bytes()
}

fn manifest_of(bytes: &[u8]) -> Manifest {
    let s = segment(bytes);
    let mut container = Vec::new();
    let sealed =
        weft_gcode::container::seal(bytes, &s.segments, &[], &mut container).expect("seals");
    Manifest::new("part.gcode", bytes, "test", &s.segments, &sealed)
}

fn verify(received: &[u8], manifest: &Manifest) -> Report {
    let open = || Ok(Box::new(Cursor::new(received.to_vec())) as Box<dyn Read>);
    verify_plain(open, manifest, u64::MAX).expect("reads")
}

/// The segment of layer `number` in `bytes`, as byte offsets.
fn layer_range(bytes: &[u8], number: u32) -> std::ops::Range<usize> {
    let s = segment(bytes);
    let layer = s
        .segments
        .iter()
        .find(|segment| segment.layer == Some(number))
        .expect("the layer is there");
    layer.start as usize..layer.end as usize
}

/// A finding as an operator reads it: what happened, and to which layer (`Some(0)` for an
/// insertion after the preamble) or other segment.
type Named = (FindingKind, Option<u32>, Option<&'static str>);

/// The findings in manifest order (the preamble, layers, the postamble); an insertion comes
/// after the segment it follows.
fn named(report: &Report) -> Vec<Named> {
    let mut out: Vec<Named> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.layer, f.segment))
        .collect();
    out.sort_by_key(|&(_, layer, segment)| match (layer, segment) {
        (_, Some("preamble")) => 0,
        (_, Some(_)) => u32::MAX,
        (layer, None) => layer.unwrap_or(0),
    });
    out
}

/// Issue: 0.2 mm layers, a lift of 0.4 mm, no markers. Once layer 57 is gone, the lift at the
/// end of layer 56 climbs to layer 58's height, so layer 58 starts at that lift: those bytes move
/// from 56 to 58. Reported before as "56-57 modified, 58 deleted".
#[test]
fn a_deleted_layer_is_named_when_a_lift_reaches_the_layer_after_next() {
    // As in the file of the report: layer 57 at 12.225 mm, layer 58 at 12.425 mm.
    let original = write(&layers(116, 1025, 200, 400), false);
    let manifest = manifest_of(&original);
    assert_eq!(segment(&original).layers(), 116);
    let mut received = original.clone();
    received.drain(layer_range(&original, 57));
    let report = verify(&received, &manifest);
    assert_eq!(
        named(&report),
        vec![
            (FindingKind::Modified, Some(56), None),
            (FindingKind::Deleted, Some(57), None),
            (FindingKind::Modified, Some(58), None),
        ],
        "{report:?}"
    );
    assert_eq!(
        layer_map(&report, &manifest),
        "layers 1-55 ok, 56 modified, 57 deleted, 58 modified, 59-116 ok"
    );
}

/// Issue: the last layer deleted was reported as "N-1 modified, N modified, postamble deleted";
/// the postamble is there, it only gained the tail (retraction, lift, travel) of layer N-1.
#[test]
fn deleting_the_last_layer_names_it_and_not_the_postamble() {
    for markers in [false, true] {
        let original = write(&layers(20, 200, 200, 600), markers);
        let manifest = manifest_of(&original);
        let mut received = original.clone();
        received.drain(layer_range(&original, 20));
        let report = verify(&received, &manifest);
        assert_eq!(
            named(&report),
            vec![
                (FindingKind::Modified, Some(19), None),
                (FindingKind::Deleted, Some(20), None),
                (FindingKind::Modified, None, Some("postamble")),
            ],
            "markers {markers}: {report:?}"
        );
        assert_eq!(
            layer_map(&report, &manifest),
            "layers 1-18 ok, 19 modified, 20 deleted; postamble modified"
        );
    }
}

/// Issue: a layer appended after the last one (before the end code) was reported as "postamble
/// modified, inserted after postamble".
#[test]
fn a_layer_appended_after_the_last_is_inserted_after_it() {
    for markers in [false, true] {
        let all = layers(21, 200, 200, 600);
        let manifest = manifest_of(&write(&all[..20], markers));
        let report = verify(&write(&all, markers), &manifest);
        assert_eq!(
            named(&report),
            vec![
                (FindingKind::Modified, Some(20), None),
                (FindingKind::Inserted, Some(20), None),
                (FindingKind::Modified, None, Some("postamble")),
            ],
            "markers {markers}: {report:?}"
        );
        assert_eq!(
            layer_map(&report, &manifest),
            "layers 1-19 ok, 20 modified; a segment inserted after layer 20; postamble modified"
        );
    }
}

/// A tampering of one layer of a generated file.
#[derive(Clone, Copy, Debug)]
enum Tampering {
    /// The layer's segment, as `weft gcode layers` shows it, cut out.
    CutSegment,
    /// The file written again without the layer.
    OmitLayer,
    /// The manifest is of the file without the layer; the file received has it.
    AddLayer,
    /// One coordinate of one of the layer's extruding moves changed.
    ModifyLayer,
}

/// Motion-only layers, `height_um` apart, each ending with a lift: none, one, two or three layer
/// heights (to the height of a later layer), or any height up to 1.5 mm.
fn generated_layers() -> impl Strategy<Value = Vec<Layer>> {
    (
        prop_oneof![Just(100u32), Just(200), Just(250), Just(300)],
        100u32..400,
        prop::collection::vec((0u8..5, 1u32..1500), 2..40),
    )
        .prop_map(|(height_um, first_um, lifts)| {
            lifts
                .iter()
                .enumerate()
                .map(|(i, &(choice, any_um))| Layer {
                    z_um: first_um + i as u32 * height_um,
                    lift_um: match choice {
                        0..=3 => u32::from(choice) * height_um,
                        _ => any_um,
                    },
                })
                .collect()
        })
}

/// `findings` name a layer `deleted`, `inserted` after a layer, or `modified`, exactly once, at
/// `layer`; besides it, only `neighbours` (segments bytes may have moved to or from) may be
/// named, and only as modified.
fn names_exactly(
    findings: &[Named],
    want: (FindingKind, u32),
    neighbours: &[(Option<u32>, Option<&'static str>)],
) -> Result<(), TestCaseError> {
    let (kind, layer) = want;
    let named: Vec<&Named> = findings
        .iter()
        .filter(|&&(k, l, segment)| k == kind && l == Some(layer) && segment.is_none())
        .collect();
    prop_assert_eq!(named.len(), 1, "{:?} {} in {:?}", kind, layer, findings);
    for &finding in findings {
        let (k, l, segment) = finding;
        if k == kind && l == Some(layer) && segment.is_none() {
            continue;
        }
        prop_assert!(
            k == FindingKind::Modified && neighbours.contains(&(l, segment)),
            "{:?} {} also named {:?}: {:?}",
            kind,
            layer,
            finding,
            findings
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_deleted_inserted_or_modified_layer_is_named_where_it_is(
        all in generated_layers(),
        pick in any::<prop::sample::Index>(),
        tampering in prop_oneof![
            Just(Tampering::CutSegment),
            Just(Tampering::OmitLayer),
            Just(Tampering::AddLayer),
            Just(Tampering::ModifyLayer),
        ],
    ) {
        let index = pick.index(all.len());
        let number = index as u32 + 1;
        let without: Vec<Layer> = all
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != index)
            .map(|(_, layer)| *layer)
            .collect();
        let full = write(&all, false);
        prop_assert_eq!(segment(&full).layers(), all.len());
        // The layer before and the one after (in the manifest's numbering), the preamble before
        // the first, the postamble after the last.
        let around = |before: u32, after: u32, last: u32| {
            let mut around = vec![(Some(before), None), (Some(after), None)];
            if before == 0 {
                around.push((None, Some("preamble")));
            }
            if after > last {
                around.push((None, Some("postamble")));
            }
            around
        };
        let last = all.len() as u32;
        let (original, received, want, neighbours) = match tampering {
            Tampering::CutSegment => {
                let mut received = full.clone();
                received.drain(layer_range(&full, number));
                let around = around(number - 1, number + 1, last);
                (full, received, (FindingKind::Deleted, number), around)
            }
            Tampering::OmitLayer => {
                let around = around(number - 1, number + 1, last);
                (full, write(&without, false), (FindingKind::Deleted, number), around)
            }
            // Numbered as the manifest (the file without it) numbers them: inserted after
            // layer `number - 1`, before the one that was `number + 1`.
            Tampering::AddLayer => {
                let around = around(number - 1, number, last - 1);
                (write(&without, false), full, (FindingKind::Inserted, number - 1), around)
            }
            Tampering::ModifyLayer => {
                let mut received = full.clone();
                let range = layer_range(&full, number);
                let at = range.start
                    + full[range]
                        .windows(4)
                        .position(|w| w == b"G1 X")
                        .expect("every layer extrudes")
                    + 4;
                received[at] = if received[at] == b'9' { b'1' } else { received[at] + 1 };
                (full, received, (FindingKind::Modified, number), Vec::new())
            }
        };
        let manifest = manifest_of(&original);
        let report = verify(&received, &manifest);
        prop_assert!(!report.intact());
        names_exactly(&named(&report), want, &neighbours)?;
    }
}
