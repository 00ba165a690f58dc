//! Every file of the G-code corpus (corpus/gcode/): segmentation against the slicer's markers,
//! seal → verify → open round trips, and every kind of tampering located exactly.

use std::io::{Cursor, Read};
use std::path::PathBuf;

use borsh::BorshDeserialize;
use weft_gcode::container::{ContainerHeader, ContainerReader, MAGIC, StoredBlock};
use weft_gcode::keys;
use weft_gcode::manifest::Manifest;
use weft_gcode::open::open_container;
use weft_gcode::verify::{FindingKind, Report, verify_container, verify_plain};
use weft_gcode::{SegmentKind, segment};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpus/gcode");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus/gcode exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "gcode"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("readable"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 18, "the corpus is complete");
    out
}

/// Marker lines counted independently of the segmenter: the number of layers a file with
/// markers must have (NovaMaker's `;<Slice> Blank` lines are not layers; no corpus file repeats
/// a numbered marker).
fn marker_count(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    type Family<'a> = &'a dyn Fn(&str) -> Option<String>;
    let families: [Family; 5] = [
        &|l| (l == ";LAYER_CHANGE").then(String::new),
        &|l| l.strip_prefix(";LAYER:").map(str::to_string),
        &|l| (l == "; CHANGE_LAYER").then(String::new),
        &|l| l.strip_prefix(";LAYER_START:").map(str::to_string),
        &|l| {
            l.strip_prefix(";<Slice> ")
                .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
                .map(str::to_string)
        },
    ];
    families
        .iter()
        .map(|family| {
            text.lines()
                .filter(|line| family(line.trim_end()).is_some())
                .count()
        })
        .max()
        .filter(|count| *count > 0)
}

#[test]
fn segments_cover_every_byte_and_match_the_slicer_markers() {
    let mut checked = 0;
    for (name, bytes) in corpus() {
        let s = segment(&bytes);
        let mut at = 0u64;
        let joined: Vec<u8> = s
            .segments
            .iter()
            .flat_map(|seg| {
                assert_eq!(seg.start, at, "{name}: segments are contiguous");
                at = seg.end;
                bytes[seg.start as usize..seg.end as usize].to_vec()
            })
            .collect();
        assert_eq!(joined, bytes, "{name}: the segments give back the file");
        if let Some(markers) = marker_count(&bytes) {
            assert_eq!(s.layers(), markers, "{name}: one layer per marker");
            checked += 1;
        }
    }
    assert!(checked >= 13, "files with markers: {checked}");
}

#[test]
fn reference_file_and_marker_free_files_come_out_right() {
    let files = corpus();
    let get = |prefix: &str| {
        let (_, bytes) = files
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .expect("file present");
        segment(bytes)
    };
    // Z-hops make a naive "new layer when Z rises" split find 53 here.
    assert_eq!(get("22_").layers(), 67);
    // No layer comments at all: motion state (arcs, G92 E resets), 240 layers.
    assert_eq!(get("06_").layers(), 240);
    // E-only moves and a retract after a lift are not layers.
    assert_eq!(get("19_").layers(), 1);
    // CNC and laser programs: no extrusion, no layers, one preamble.
    for prefix in ["15_", "16_", "20_"] {
        let s = get(prefix);
        assert_eq!(s.layers(), 0, "{prefix}");
        assert_eq!(s.segments.len(), 1, "{prefix}");
    }
}

fn seal_with(bytes: &[u8], receivers: &[keys::ReceiverPublic]) -> (Vec<u8>, Manifest) {
    let s = segment(bytes);
    let mut container = Vec::new();
    let sealed =
        weft_gcode::container::seal(bytes, &s.segments, receivers, &mut container).expect("seals");
    let mut manifest = Manifest::new("file.gcode", bytes, "test", &s.segments, &sealed);
    manifest.sign(&weft_core::SigningKey::from_seed(&[9; 32]));
    (container, manifest)
}

fn reader(bytes: &[u8]) -> impl FnMut() -> std::io::Result<Box<dyn Read>> + '_ {
    move || Ok(Box::new(Cursor::new(bytes.to_vec())) as Box<dyn Read>)
}

#[test]
fn every_file_seals_verifies_and_opens_byte_identical_plain_and_encrypted() {
    let (x_secret, x_public) = keys::generate();
    let (rsa_secret, rsa_public) = keys::generate_rsa(3072).expect("RSA key");
    let x = (&x_secret, vec![x_public.clone()]);
    let rsa = (&rsa_secret, vec![rsa_public.clone()]);
    // One container for a printer with an X25519 key and a site with an RSA key: each opens it.
    let both = [x_public, rsa_public];
    for (number, (name, bytes)) in corpus().into_iter().enumerate() {
        let mut cases: Vec<(Option<&keys::ReceiverSecret>, &[keys::ReceiverPublic])> =
            vec![(None, &[]), (Some(x.0), &x.1), (Some(rsa.0), &rsa.1)];
        if number == 0 {
            cases.extend([(Some(x.0), &both[..]), (Some(rsa.0), &both[..])]);
        }
        for (key, receivers) in cases {
            let (container, manifest) = seal_with(&bytes, receivers);
            let report = verify_container(Cursor::new(&container), &manifest).expect("reads");
            assert!(report.intact(), "{name}: {report:?}");
            assert_eq!(report.checks.signature, Some(true));
            let plain = verify_plain(reader(&bytes), &manifest, 1 << 30).expect("reads");
            assert!(plain.intact(), "{name}: plain {plain:?}");
            let mut out = Vec::new();
            open_container(reader(&container), &manifest, key, &mut out).expect("opens");
            assert!(out == bytes, "{name}: opened bytes differ");
            if !receivers.is_empty() {
                // 16 bytes from the middle of the file (inside its layers): random ciphertext
                // holds a given 16-byte run with a chance of about its length / 2^128 (a short
                // run such as "G1 X" turns up by chance in a few MB about once in a few hundred
                // runs).
                let middle = bytes.len() / 2;
                let layer_text = &bytes[middle..(middle + 16).min(bytes.len())];
                assert!(
                    !container.windows(layer_text.len()).any(|w| w == layer_text),
                    "{name}: no plain G-code in an encrypted container"
                );
            }
        }
    }
}

/// A small deterministic generator: the seed is printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    std::env::var("WEFT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0042)
}

fn layer_ranges(bytes: &[u8]) -> Vec<(usize, usize, u32)> {
    segment(bytes)
        .segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Layer)
        .map(|s| (s.start as usize, s.end as usize, s.layer.unwrap_or(0)))
        .collect()
}

fn kinds(report: &Report) -> Vec<(FindingKind, Option<u32>)> {
    report.findings.iter().map(|f| (f.kind, f.layer)).collect()
}

/// Changes one coordinate digit of an extruding move inside `range`.
fn modify_coordinate(bytes: &mut [u8], range: (usize, usize)) -> bool {
    let text = &bytes[range.0..range.1];
    let Some(at) = text.windows(4).position(|w| w == b"G1 X") else {
        return false;
    };
    let digit = range.0 + at + 4;
    if !bytes[digit].is_ascii_digit() {
        return false;
    }
    bytes[digit] = if bytes[digit] == b'9' {
        b'1'
    } else {
        bytes[digit] + 1
    };
    true
}

#[test]
fn tampering_of_each_kind_is_located_exactly_in_plain_gcode() {
    let seed = seed();
    let mut rng = Rng(seed);
    for (name, bytes) in corpus() {
        let layers = layer_ranges(&bytes);
        if layers.len() < 4 {
            continue;
        }
        let (_, manifest) = seal_with(&bytes, &[]);
        let check = |tampered: &[u8], want: Vec<(FindingKind, Option<u32>)>, what: &str| {
            // No size limit (u64::MAX) must mean no limit, not an overflow.
            let report = verify_plain(reader(tampered), &manifest, u64::MAX).expect("reads");
            assert!(
                !report.intact(),
                "{name} {what} (seed {seed}): not detected"
            );
            assert_eq!(
                kinds(&report),
                want,
                "{name} {what} (seed {seed}): {report:?}"
            );
        };
        // Not the first or last layer: their neighbours are the preamble and postamble.
        let k = 1 + rng.below(layers.len() - 2);
        let (start, end, number) = layers[k];

        let mut modified = bytes.clone();
        if modify_coordinate(&mut modified, (start, end)) {
            check(
                &modified,
                vec![(FindingKind::Modified, Some(number))],
                "modify",
            );
        }

        let mut deleted = bytes.clone();
        deleted.drain(start..end);
        check(
            &deleted,
            vec![(FindingKind::Deleted, Some(number))],
            "delete",
        );

        let mut duplicated = bytes.clone();
        let copy = bytes[start..end].to_vec();
        duplicated.splice(end..end, copy);
        // With markers, the copy is a layer of its own: an insertion. Without markers, a layer
        // repeated at its own height is one longer layer to the motion state: a modification.
        let by_markers = matches!(segment(&bytes).method, weft_gcode::Method::Markers(_));
        let kind = if by_markers {
            FindingKind::Inserted
        } else {
            FindingKind::Modified
        };
        check(&duplicated, vec![(kind, Some(number))], "duplicate");

        let (next_start, next_end, next_number) = layers[k + 1];
        let mut swapped = bytes[..start].to_vec();
        swapped.extend_from_slice(&bytes[next_start..next_end]);
        swapped.extend_from_slice(&bytes[start..end]);
        swapped.extend_from_slice(&bytes[next_end..]);
        let report = verify_plain(reader(&swapped), &manifest, 1 << 30).expect("reads");
        let mut got = kinds(&report);
        got.sort_by_key(|(_, layer)| *layer);
        // Swapped layers with markers stay layers: both are reordered. Without markers the
        // segmenter may merge or split them; then they must still be reported.
        if segment(&swapped).layers() == layers.len() {
            assert_eq!(
                got,
                vec![
                    (FindingKind::Reordered, Some(number)),
                    (FindingKind::Reordered, Some(next_number))
                ],
                "{name} swap (seed {seed}): {report:?}"
            );
        } else {
            assert!(!report.intact(), "{name} swap (seed {seed})");
        }
    }
}

fn blocks_of(container: &[u8]) -> (Vec<u8>, Vec<StoredBlock>) {
    let mut reader = ContainerReader::new(Cursor::new(container)).expect("reads");
    let header = borsh::to_vec(&reader.header).expect("encodes");
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block().expect("reads") {
        blocks.push(block);
    }
    (header, blocks)
}

fn assemble(header: &[u8], blocks: &[StoredBlock]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    for block in blocks {
        let bytes = borsh::to_vec(block).expect("encodes");
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn container_tampering_is_located_and_refused_at_opening() {
    let seed = seed();
    let mut rng = Rng(seed);
    let (name, bytes) = corpus()
        .into_iter()
        .find(|(name, _)| name.starts_with("22_"))
        .expect("reference file");
    let (container, manifest) = seal_with(&bytes, &[]);
    let (header, blocks) = blocks_of(&container);
    let k = 2 + rng.below(blocks.len() - 4); // a layer block (block 0 is the preamble)
    let layer = blocks[k].layer;
    let check = |tampered: &[u8], want: Vec<(FindingKind, Option<u32>)>, what: &str| {
        let report = verify_container(Cursor::new(tampered), &manifest).expect("reads");
        assert!(!report.intact(), "{name} {what} (seed {seed})");
        assert_eq!(
            kinds(&report),
            want,
            "{name} {what} (seed {seed}): {report:?}"
        );
        let mut out = Vec::new();
        assert!(open_container(reader(tampered), &manifest, None, &mut out).is_err());
        assert!(
            out.is_empty(),
            "{what}: no byte written from a tampered container"
        );
        report
    };
    let mut edited = blocks.clone();
    edited[k].body[10] ^= 1;
    check(
        &assemble(&header, &edited),
        vec![(FindingKind::Modified, Some(layer))],
        "modify",
    );

    let mut edited = blocks.clone();
    edited.remove(k);
    check(
        &assemble(&header, &edited),
        vec![(FindingKind::Deleted, Some(layer))],
        "delete",
    );

    let mut edited = blocks.clone();
    edited.swap(k, k + 1);
    check(
        &assemble(&header, &edited),
        vec![
            (FindingKind::Reordered, Some(layer + 1)),
            (FindingKind::Reordered, Some(layer)),
        ],
        "swap",
    );

    // The paper's severe case: every layer from k on changed, and the chain rebuilt.
    let mut edited = blocks.clone();
    let mut previous = edited[k - 1].hash();
    for block in &mut edited[k..] {
        block.body.push(b'\n');
        block.previous = previous;
        previous = block.hash();
    }
    let report = check(
        &assemble(&header, &edited),
        (k..blocks.len())
            .map(|i| {
                let b = &blocks[i];
                (
                    FindingKind::Modified,
                    (b.kind == SegmentKind::Layer).then_some(b.layer),
                )
            })
            .collect(),
        "rechain",
    );
    let map = weft_gcode::verify::layer_map(&report, &manifest);
    assert!(
        map.contains(&format!("{layer}-67 modified")),
        "the map names the range: {map}"
    );
}

#[test]
fn any_single_byte_flip_in_a_sealed_container_is_detected() {
    let seed = seed();
    let mut rng = Rng(seed ^ 0xff);
    let (_, bytes) = corpus()
        .into_iter()
        .find(|(name, _)| name.starts_with("13_"))
        .expect("small file");
    let (_, public) = keys::generate();
    let (container, manifest) = seal_with(&bytes, &[public]);
    for _ in 0..200 {
        let mut flipped = container.clone();
        let at = rng.below(flipped.len());
        flipped[at] ^= 1 << rng.below(8);
        let detected = match verify_container(Cursor::new(&flipped), &manifest) {
            Ok(report) => !report.intact(),
            Err(_) => true,
        };
        assert!(detected, "flip at byte {at} went unnoticed (seed {seed})");
    }
}

#[test]
fn wrong_key_truncation_and_garbage_are_clear_errors() {
    let (_, bytes) = corpus()
        .into_iter()
        .find(|(name, _)| name.starts_with("13_"))
        .expect("small file");
    let (_, public) = keys::generate();
    let (other, _) = keys::generate();
    let (container, manifest) = seal_with(&bytes, &[public]);
    let mut out = Vec::new();
    let error = open_container(reader(&container), &manifest, Some(&other), &mut out)
        .expect_err("wrong key");
    assert!(error.to_string().contains("not sealed for key"), "{error}");
    assert!(out.is_empty());
    let error = open_container(reader(&container), &manifest, None, &mut out).expect_err("no key");
    assert!(error.to_string().contains("encrypted"), "{error}");

    // RSA: another RSA key, and an X25519 key, cannot open a container sealed for an RSA key;
    // a wrapped key altered in the container does not open either.
    let (rsa_secret, rsa_public) = keys::generate_rsa(3072).expect("RSA key");
    let (rsa_other, _) = keys::generate_rsa(3072).expect("RSA key");
    let (rsa_container, rsa_manifest) = seal_with(&bytes, &[rsa_public]);
    for wrong in [&rsa_other, &other] {
        let error = open_container(reader(&rsa_container), &rsa_manifest, Some(wrong), &mut out)
            .expect_err("wrong key");
        assert!(error.to_string().contains("not sealed for key"), "{error}");
    }
    let (header, blocks) = blocks_of(&rsa_container);
    let mut parsed = ContainerHeader::try_from_slice(&header).expect("header");
    parsed.recipients[0].wrapped_key[10] ^= 1;
    let altered = assemble(&borsh::to_vec(&parsed).expect("encode"), &blocks);
    let error = open_container(reader(&altered), &rsa_manifest, Some(&rsa_secret), &mut out)
        .expect_err("altered wrapped key");
    assert!(error.to_string().contains("tampered"), "{error}");
    assert!(
        out.is_empty(),
        "nothing written from a container that fails"
    );
    let error = ContainerReader::new(Cursor::new(&altered))
        .expect("reads")
        .content_key(&rsa_secret)
        .expect_err("altered wrapped key");
    assert!(error.to_string().contains("does not open"), "{error}");

    let truncated = &container[..container.len() - 7];
    let error = verify_container(Cursor::new(truncated), &manifest).expect_err("truncated");
    assert!(error.to_string().contains("truncated"), "{error}");
    let error =
        verify_container(Cursor::new(b"garbage, not a container"), &manifest).expect_err("garbage");
    assert!(
        error.to_string().contains("not a weft G-code container"),
        "{error}"
    );
    let error = Manifest::from_json(b"{\"format\": 3}").expect_err("bad manifest");
    assert!(error.to_string().contains("manifest"), "{error}");
}

/// The vector in docs/gcode.md: an unencrypted container of a two-layer file is pinned byte for
/// byte by its hashes.
#[test]
fn golden_container_vector() {
    let bytes = b"G90\nM82\nG1 Z0.2\nG1 X1 Y1 E1\nG1 Z0.4\nG1 X2 Y2 E2\nM84\n";
    let s = segment(bytes);
    let mut container = Vec::new();
    let sealed =
        weft_gcode::container::seal(bytes, &s.segments, &[], &mut container).expect("seals");
    let hex_of = |h: &[u8; 32]| hex::encode(h);
    let got = format!(
        "segments {} bytes {} header {} head {} sha256 {}",
        s.segments.len(),
        container.len(),
        hex_of(&sealed.header_hash),
        hex_of(&sealed.chain_head),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&container))
    );
    assert_eq!(got, include_str!("golden_container.txt").trim(), "{got}");
}
