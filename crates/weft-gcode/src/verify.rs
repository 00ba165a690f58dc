//! Verification: the paper's three checks (dimension, chain, benchmark), then the *location* of
//! every change, by aligning the received segment hashes with the manifest's, and pairing what
//! does not align by kind and height.

use std::collections::{HashMap, VecDeque};
use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::container::ContainerReader;
use crate::error::Result;
use crate::manifest::{Manifest, ManifestSegment, parse_hash, plain_head};
use crate::segment::SegmentKind;

/// What kind of change a finding reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
}

/// One located change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The manifest's 1-based layer number (for an insertion: the layer it follows; 0 if it
    /// follows the preamble or nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<u32>,
    /// `preamble` or `postamble`, for those segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<&'static str>,
    /// 1-based position of the segment in what was received, if it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_at: Option<usize>,
}

/// A received segment as `locate` sees it: its hash, and what the segmenter (plain G-code) or the
/// block's header (a container) says it is. The manifest records the same of each expected
/// segment; a changed segment is recognised by its kind and height, since its hash says nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub hash: [u8; 32],
    pub kind: SegmentKind,
    /// Height in micrometres, rounded as the manifest rounds it.
    pub z_um: Option<i64>,
}

/// The outcome of the three checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checks {
    pub dimension: bool,
    pub chain: bool,
    pub benchmark: bool,
    pub signature: Option<bool>,
}

/// The verdict on a container or a plain file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub status: &'static str,
    /// `container` or `plain`.
    pub input: &'static str,
    pub expected_layers: usize,
    pub found_layers: usize,
    pub checks: Checks,
    pub findings: Vec<Finding>,
    /// The manifest's signer (hex), if it is signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.status == "intact"
    }
}

fn expected_hashes(manifest: &Manifest, plain: bool) -> Result<Vec<[u8; 32]>> {
    manifest
        .body
        .segments
        .iter()
        .map(|segment| {
            if plain {
                parse_hash("manifest segment plain hash", &segment.plain)
            } else {
                parse_hash("manifest segment block hash", &segment.block)
            }
        })
        .collect()
}

fn expected_layers(manifest: &Manifest) -> usize {
    manifest
        .body
        .segments
        .iter()
        .filter(|segment| segment.kind == SegmentKind::Layer)
        .count()
}

fn report(
    manifest: &Manifest,
    input: &'static str,
    found: &[Received],
    found_layers: usize,
    chain: bool,
) -> Result<Report> {
    let expected = expected_hashes(manifest, input == "plain")?;
    let dimension = expected.len() == found.len();
    let benchmark = dimension && expected.iter().eq(found.iter().map(|f| &f.hash));
    let signature = manifest.check_signature();
    let findings = if benchmark {
        Vec::new()
    } else {
        locate(&expected, found, manifest)
    };
    let intact = dimension && chain && benchmark && signature.is_none_or(|(valid, _)| valid);
    Ok(Report {
        status: if intact { "intact" } else { "tampered" },
        input,
        expected_layers: expected_layers(manifest),
        found_layers,
        checks: Checks {
            dimension,
            chain,
            benchmark,
            signature: signature.map(|(valid, _)| valid),
        },
        findings,
        signer: manifest.signer.clone(),
    })
}

/// Verifies a sealed container against `manifest`, reading it once, block by block.
pub fn verify_container(input: impl Read, manifest: &Manifest) -> Result<Report> {
    let mut reader = ContainerReader::new(input)?;
    let header_hash = reader.header.hash();
    let mut chain = parse_hash("manifest header_hash", &manifest.body.header_hash)? == header_hash;
    let mut previous = header_hash;
    let mut found = Vec::new();
    let mut found_layers = 0;
    while let Some(block) = reader.next_block()? {
        if block.previous != previous {
            chain = false;
        }
        if block.kind == SegmentKind::Layer {
            found_layers += 1;
        }
        previous = block.hash();
        found.push(Received {
            hash: previous,
            kind: block.kind,
            z_um: block.z_um,
        });
    }
    chain &= found.len() == reader.header.segments as usize
        && parse_hash("manifest chain_head", &manifest.body.chain_head)? == previous;
    report(manifest, "container", &found, found_layers, chain)
}

/// Verifies plain G-code against `manifest`. The common case, an intact file, is checked in one
/// streaming pass over the manifest's segment lengths; only a file that differs is read whole
/// (up to `max_bytes`) and segmented again to locate the changes.
pub fn verify_plain(
    mut open: impl FnMut() -> std::io::Result<Box<dyn Read>>,
    manifest: &Manifest,
    max_bytes: u64,
) -> Result<Report> {
    let expected = expected_hashes(manifest, true)?;
    // Fast path: hash the file along the manifest's boundaries.
    let mut input = open()?;
    let mut same = true;
    let mut buffer = vec![0u8; 1 << 16];
    // The segments that matched, as (start, end): their bytes are known to hash as expected.
    let mut known: HashMap<(u64, u64), [u8; 32]> = HashMap::new();
    let mut at = 0u64;
    for (segment, want) in manifest.body.segments.iter().zip(&expected) {
        let mut hasher = Sha256::new();
        let mut left = segment.bytes;
        while left > 0 {
            let take = left.min(buffer.len() as u64) as usize;
            let n = input.read(&mut buffer[..take])?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            left -= n as u64;
        }
        if left > 0 || <[u8; 32]>::from(hasher.finalize()) != *want {
            same = false;
            break;
        }
        known.insert((at, at + segment.bytes), *want);
        at += segment.bytes;
    }
    if same && input.read(&mut buffer)? == 0 {
        let head_ok = parse_hash("manifest plain_head", &manifest.body.plain_head)?
            == plain_head(expected.iter());
        let found: Vec<Received> = manifest
            .body
            .segments
            .iter()
            .zip(&expected)
            .map(|(segment, hash)| Received {
                hash: *hash,
                kind: segment.kind,
                z_um: segment.z_um,
            })
            .collect();
        return report(
            manifest,
            "plain",
            &found,
            expected_layers(manifest),
            head_ok,
        );
    }
    drop(input);
    let verified_prefix = at;
    // Slow path: the whole file, segmented again.
    // Sized for the file the manifest describes, so a changed file is read without regrowing.
    let expected_size = manifest
        .body
        .file_bytes
        .min(max_bytes)
        .saturating_add(1 << 16);
    let mut bytes = Vec::with_capacity(usize::try_from(expected_size).unwrap_or(0));
    open()?
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(crate::error::GcodeError::TooLarge {
            what: "G-code file",
            size: bytes.len() as u64,
            max: max_bytes,
        });
    }
    // While the file is segmented, a second thread checks the manifest's segments aligned to
    // the end of the file: a local change leaves everything after it intact, only shifted.
    let (segmentation, suffix) = std::thread::scope(|scope| {
        let suffix = scope.spawn(|| intact_suffix(&bytes, manifest, &expected, verified_prefix));
        let segmentation = crate::segment::segment(&bytes);
        // A panic cannot happen in hashing; should the thread fail anyway, its work is redone.
        (segmentation, suffix.join().unwrap_or_default())
    });
    known.extend(suffix);
    // What is left (the changed middle) is hashed in two halves, one on a second thread.
    let unknown: Vec<(u64, u64)> = segmentation
        .segments
        .iter()
        .map(|segment| (segment.start, segment.end))
        .filter(|range| !known.contains_key(range))
        .collect();
    let hash_all = |ranges: &[(u64, u64)]| -> Vec<((u64, u64), [u8; 32])> {
        ranges
            .iter()
            .map(|&(start, end)| {
                let digest = Sha256::digest(&bytes[start as usize..end as usize]);
                ((start, end), digest.into())
            })
            .collect()
    };
    let (first, second) = unknown.split_at(unknown.len() / 2);
    std::thread::scope(|scope| {
        let later = scope.spawn(|| hash_all(second));
        known.extend(hash_all(first));
        known.extend(later.join().unwrap_or_else(|_| hash_all(second)));
    });
    let found: Vec<Received> = segmentation
        .segments
        .iter()
        .map(|segment| {
            let range = (segment.start, segment.end);
            let hash = known.get(&range).copied().unwrap_or_else(|| {
                Sha256::digest(&bytes[segment.start as usize..segment.end as usize]).into()
            });
            Received {
                hash,
                kind: segment.kind,
                z_um: segment.z_um(),
            }
        })
        .collect();
    let chain = parse_hash("manifest plain_head", &manifest.body.plain_head)?
        == plain_head(found.iter().map(|f| &f.hash));
    report(manifest, "plain", &found, segmentation.layers(), chain)
}

/// The manifest's segments, from the last backwards, that `bytes` ends with, as byte ranges of
/// `bytes` with their hashes; stops at the first that differs or that would reach into the
/// first `verified_prefix` bytes (checked already).
fn intact_suffix(
    bytes: &[u8],
    manifest: &Manifest,
    expected: &[[u8; 32]],
    verified_prefix: u64,
) -> Vec<((u64, u64), [u8; 32])> {
    let mut intact = Vec::new();
    let mut end = bytes.len() as u64;
    for (segment, want) in manifest.body.segments.iter().zip(expected).rev() {
        let Some(start) = end
            .checked_sub(segment.bytes)
            .filter(|&start| start >= verified_prefix)
        else {
            break;
        };
        if <[u8; 32]>::from(Sha256::digest(&bytes[start as usize..end as usize])) != *want {
            break;
        }
        intact.push(((start, end), *want));
        end = start;
    }
    intact
}

/// Longest increasing subsequence of `values` (indices into it).
fn lis(values: &[usize]) -> Vec<usize> {
    let mut tails: Vec<usize> = Vec::new();
    let mut parent = vec![usize::MAX; values.len()];
    for (i, &value) in values.iter().enumerate() {
        let at = tails.partition_point(|&t| values[t] < value);
        if at > 0 {
            parent[i] = tails[at - 1];
        }
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(i) = at {
        out.push(i);
        at = (parent[i] != usize::MAX).then_some(parent[i]);
    }
    out.reverse();
    out
}

/// An insertion at found position `p`, after `follows`: a layer names its number, the preamble
/// (or nothing) is layer 0, the postamble is named as a segment.
fn inserted_after(follows: Option<&ManifestSegment>, p: usize) -> Finding {
    let (layer, segment) = match follows {
        Some(s) if s.kind == SegmentKind::Postamble => (None, Some(s.kind.name())),
        Some(s) => (Some(s.layer.unwrap_or(0)), None),
        None => (Some(0), None),
    };
    Finding {
        kind: FindingKind::Inserted,
        layer,
        segment,
        found_at: Some(p + 1),
    }
}

/// What pairs a changed segment with the one it stands for: its kind and height.
type Key = (SegmentKind, Option<i64>);

/// Between two anchors of the alignment, pairs the expected segments nobody matched (`lost`)
/// with the received segments that match nothing (`extra`, in received order): for each extra
/// segment, the index in `lost` of the one it is a modification of, or `None` (inserted).
///
/// Pairing in order alone names the wrong layer whenever a deletion or an insertion also changes
/// a neighbour, which is common: bytes move between neighbours (the tail of the layer before the
/// last goes to the postamble when the last layer is deleted; a travel lift that reaches a later
/// layer's height starts that layer early). So a received segment first pairs with the first
/// unpaired expected segment of the same kind and height (a layer with the layer at its height,
/// the postamble with the postamble). Layers still unpaired on both sides then pair in order:
/// a layer whose height itself was changed is still the layer that was modified. Whatever is
/// left is deleted (expected) or inserted (received).
fn pair(lost: &[Key], extra: &[Key]) -> Vec<Option<usize>> {
    let mut waiting: HashMap<Key, VecDeque<usize>> = HashMap::new();
    for (index, key) in lost.iter().enumerate() {
        waiting.entry(*key).or_default().push_back(index);
    }
    let mut partner: Vec<Option<usize>> = extra
        .iter()
        .map(|key| waiting.get_mut(key).and_then(VecDeque::pop_front))
        .collect();
    let mut taken = vec![false; lost.len()];
    for &index in partner.iter().flatten() {
        taken[index] = true;
    }
    let mut left_layers =
        (0..lost.len()).filter(|&index| !taken[index] && lost[index].0 == SegmentKind::Layer);
    for (slot, key) in partner.iter_mut().zip(extra) {
        if slot.is_none() && key.0 == SegmentKind::Layer {
            *slot = left_layers.next();
        }
    }
    partner
}

/// Aligns found hashes with expected ones and names each change: the largest in-order set of
/// hash matches is the backbone, other matches are reordered, and between backbone anchors the
/// unmatched segments are paired by kind and height ([`pair`]).
pub fn locate(expected: &[[u8; 32]], found: &[Received], manifest: &Manifest) -> Vec<Finding> {
    let segments = &manifest.body.segments;
    let finding = |kind, index: usize, found_at: Option<usize>| {
        let segment = segments.get(index);
        Finding {
            kind,
            layer: segment.and_then(|s| s.layer),
            segment: segment
                .filter(|s| s.kind != SegmentKind::Layer)
                .map(|s| s.kind.name()),
            found_at: found_at.map(|p| p + 1),
        }
    };
    // Expected positions of each hash (a hash may repeat: identical layers).
    let mut positions: HashMap<&[u8; 32], Vec<usize>> = HashMap::new();
    for (index, hash) in expected.iter().enumerate() {
        positions.entry(hash).or_default().push(index);
    }
    // Each found segment takes the first unused expected position of its hash.
    let mut used = vec![false; expected.len()];
    let mut matched: Vec<(usize, usize)> = Vec::new(); // (found position, expected index)
    let mut unmatched_found = Vec::new();
    for (position, received) in found.iter().enumerate() {
        let slot = positions
            .get(&received.hash)
            .and_then(|list| list.iter().copied().find(|&e| !used[e]));
        match slot {
            Some(e) => {
                used[e] = true;
                matched.push((position, e));
            }
            None => unmatched_found.push(position),
        }
    }
    // The largest in-order set of matches is the backbone; other matches moved.
    let order: Vec<usize> = matched.iter().map(|&(_, e)| e).collect();
    let backbone: Vec<(usize, usize)> = lis(&order).into_iter().map(|i| matched[i]).collect();
    let in_backbone: std::collections::HashSet<usize> = backbone.iter().map(|&(p, _)| p).collect();
    let mut findings = Vec::new();
    let mut reordered: Vec<(usize, usize)> = matched
        .iter()
        .copied()
        .filter(|(p, _)| !in_backbone.contains(p))
        .collect();
    // A swap of neighbours leaves one of the pair in the backbone: name it too.
    let by_position: HashMap<usize, usize> = matched.iter().copied().collect();
    let mut extra = Vec::new();
    for &(p, e) in &reordered {
        for neighbour in [p.wrapping_sub(1), p + 1] {
            if let Some(&other) = by_position.get(&neighbour)
                && in_backbone.contains(&neighbour)
                && other.abs_diff(e) == 1
                && (neighbour < p) != (other < e)
            {
                extra.push((neighbour, other));
            }
        }
    }
    reordered.extend(extra);
    reordered.sort_by_key(|&(_, e)| e);
    reordered.dedup();
    let moved_expected: std::collections::HashSet<usize> =
        reordered.iter().map(|&(_, e)| e).collect();
    for &(p, e) in &reordered {
        findings.push(finding(FindingKind::Reordered, e, Some(p)));
    }
    // Between consecutive backbone anchors: expected segments nobody matched, and found
    // segments that match nothing. Paired ones are modifications; the rest are deletions or
    // insertions.
    let mut anchors = vec![(usize::MAX, usize::MAX)];
    anchors.extend(backbone.iter().copied());
    anchors.push((found.len(), expected.len()));
    for gap in anchors.windows(2) {
        let (p0, e0) = gap[0];
        let (p1, e1) = gap[1];
        let from_e = e0.wrapping_add(1);
        let from_p = p0.wrapping_add(1);
        let lost: Vec<usize> = (from_e..e1)
            .filter(|&e| !used[e] && !moved_expected.contains(&e))
            .collect();
        let extra: Vec<usize> = (from_p..p1)
            .filter(|p| unmatched_found.binary_search(p).is_ok())
            .collect();
        // `expected` comes from the manifest's segments, so every index has one; were one
        // missing, it would count as a layer of unknown height.
        let lost_keys: Vec<Key> = lost
            .iter()
            .map(|&e| {
                segments
                    .get(e)
                    .map_or((SegmentKind::Layer, None), |s| (s.kind, s.z_um))
            })
            .collect();
        let extra_keys: Vec<Key> = extra
            .iter()
            .map(|&p| (found[p].kind, found[p].z_um))
            .collect();
        let partner = pair(&lost_keys, &extra_keys);
        let mut paired = vec![false; lost.len()];
        // An insertion follows the expected segment of the nearest received one before it.
        let mut follows = (e0 != usize::MAX).then_some(e0);
        for (&p, partner) in extra.iter().zip(&partner) {
            match *partner {
                Some(index) => {
                    paired[index] = true;
                    follows = Some(lost[index]);
                    findings.push(finding(FindingKind::Modified, lost[index], Some(p)));
                }
                None => findings.push(inserted_after(follows.and_then(|e| segments.get(e)), p)),
            }
        }
        for (&e, &paired) in lost.iter().zip(&paired) {
            if !paired {
                findings.push(finding(FindingKind::Deleted, e, None));
            }
        }
    }
    findings.sort_by_key(|f| (f.found_at.unwrap_or(usize::MAX), f.layer));
    findings
}

/// A compact map for people: `layers 1-41 ok, 42 modified, 43-67 ok`.
pub fn layer_map(report: &Report, manifest: &Manifest) -> String {
    let layers = expected_layers(manifest);
    let mut state: Vec<&str> = vec!["ok"; layers + 1];
    let mut notes = Vec::new();
    for finding in &report.findings {
        let word = match finding.kind {
            FindingKind::Modified => "modified",
            FindingKind::Deleted => "deleted",
            FindingKind::Reordered => "reordered",
            FindingKind::Inserted => {
                notes.push(format!(
                    "a segment inserted after {}",
                    match (finding.layer, finding.segment) {
                        (_, Some(segment)) => format!("the {segment}"),
                        (Some(0) | None, None) => "the preamble".to_string(),
                        (Some(n), None) => format!("layer {n}"),
                    }
                ));
                continue;
            }
        };
        match (finding.layer, finding.segment) {
            (Some(layer), _) if (layer as usize) <= layers => state[layer as usize] = word,
            (_, Some(segment)) => notes.push(format!("{segment} {word}")),
            _ => {}
        }
    }
    let mut parts = Vec::new();
    let mut start = 1;
    while start <= layers {
        let mut end = start;
        while end < layers && state[end + 1] == state[start] {
            end += 1;
        }
        let range = if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        };
        parts.push(format!("{range} {}", state[start]));
        start = end + 1;
    }
    let mut out = if parts.is_empty() {
        "no layers".to_string()
    } else {
        format!("layers {}", parts.join(", "))
    };
    for note in notes {
        out += &format!("; {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestBody;

    fn hash(n: u8) -> [u8; 32] {
        [n; 32]
    }

    /// Segment `n` of `manifest()` as received, with hash `n`; any other `n` is a layer at a
    /// height of its own.
    fn received(n: u8) -> Received {
        let kind = match n {
            0 => SegmentKind::Preamble,
            4 => SegmentKind::Postamble,
            _ => SegmentKind::Layer,
        };
        Received {
            hash: hash(n),
            kind,
            z_um: (kind == SegmentKind::Layer).then(|| i64::from(n) * 200),
        }
    }

    /// preamble, layers 1..=3, postamble; hashes 0..=4.
    fn manifest() -> Manifest {
        let segment = |kind, layer: Option<u32>| ManifestSegment {
            kind,
            layer,
            z_um: layer.map(|n| i64::from(n) * 200),
            bytes: 1,
            plain: String::new(),
            block: String::new(),
        };
        Manifest {
            body: ManifestBody {
                format: String::new(),
                file_name: String::new(),
                file_bytes: 0,
                file_sha256: String::new(),
                method: String::new(),
                header_hash: String::new(),
                chain_head: String::new(),
                plain_head: String::new(),
                segments: vec![
                    segment(SegmentKind::Preamble, None),
                    segment(SegmentKind::Layer, Some(1)),
                    segment(SegmentKind::Layer, Some(2)),
                    segment(SegmentKind::Layer, Some(3)),
                    segment(SegmentKind::Postamble, None),
                ],
            },
            signer: None,
            signature: None,
        }
    }

    fn inserted(found: &[u8]) -> (Option<u32>, Option<&'static str>) {
        let expected: Vec<_> = (0..5).map(hash).collect();
        let found: Vec<_> = found.iter().map(|&n| received(n)).collect();
        let findings = locate(&expected, &found, &manifest());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::Inserted);
        (findings[0].layer, findings[0].segment)
    }

    #[test]
    fn an_insertion_names_what_it_follows() {
        assert_eq!(
            inserted(&[9, 0, 1, 2, 3, 4]),
            (Some(0), None),
            "before everything"
        );
        assert_eq!(
            inserted(&[0, 9, 1, 2, 3, 4]),
            (Some(0), None),
            "after the preamble"
        );
        assert_eq!(
            inserted(&[0, 1, 2, 9, 3, 4]),
            (Some(2), None),
            "after layer 2"
        );
        assert_eq!(inserted(&[0, 1, 2, 3, 4, 9]), (None, Some("postamble")));
    }

    #[test]
    fn the_map_says_where_an_insertion_went() {
        let expected: Vec<_> = (0..5).map(hash).collect();
        let m = manifest();
        let found: Vec<_> = [0, 1, 2, 3, 4, 9].iter().map(|&n| received(n)).collect();
        let report = Report {
            status: "tampered",
            input: "plain",
            expected_layers: 3,
            found_layers: 3,
            checks: Checks {
                dimension: false,
                chain: false,
                benchmark: false,
                signature: None,
            },
            findings: locate(&expected, &found, &m),
            signer: None,
        };
        assert_eq!(
            layer_map(&report, &m),
            "layers 1-3 ok; a segment inserted after the postamble"
        );
    }

    /// What `locate` names, in manifest order, when the segments received are `found`: each
    /// one's kind, hash (`hash(n)`) and height in micrometres. The manifest is `manifest()`:
    /// layers 1..=3 at 200, 400 and 600 µm, hashes 1..=3.
    fn named(
        found: &[(SegmentKind, u8, Option<i64>)],
    ) -> Vec<(FindingKind, Option<u32>, Option<&'static str>)> {
        let expected: Vec<_> = (0..5).map(hash).collect();
        let found: Vec<Received> = found
            .iter()
            .map(|&(kind, n, z_um)| Received {
                hash: hash(n),
                kind,
                z_um,
            })
            .collect();
        let mut named: Vec<_> = locate(&expected, &found, &manifest())
            .iter()
            .map(|f| (f.kind, f.layer, f.segment))
            .collect();
        named.sort_by_key(|&(_, layer, segment)| (segment.is_some(), layer));
        named
    }

    #[test]
    fn changed_segments_pair_by_kind_and_height_not_by_order() {
        use FindingKind::{Deleted, Inserted, Modified};
        use SegmentKind::{Layer, Postamble, Preamble};
        // Layer 2 deleted, layers 1 and 3 changed: layer 3 is found where 2 was.
        assert_eq!(
            named(&[
                (Preamble, 0, None),
                (Layer, 11, Some(200)),
                (Layer, 13, Some(600)),
                (Postamble, 4, None),
            ]),
            vec![
                (Modified, Some(1), None),
                (Deleted, Some(2), None),
                (Modified, Some(3), None)
            ]
        );
        // The last layer deleted; the postamble, still there, changed.
        assert_eq!(
            named(&[
                (Preamble, 0, None),
                (Layer, 1, Some(200)),
                (Layer, 12, Some(400)),
                (Postamble, 14, None),
            ]),
            vec![
                (Modified, Some(2), None),
                (Deleted, Some(3), None),
                (Modified, None, Some("postamble"))
            ]
        );
        // A layer appended after the last: inserted after layer 3, the postamble changed.
        assert_eq!(
            named(&[
                (Preamble, 0, None),
                (Layer, 1, Some(200)),
                (Layer, 2, Some(400)),
                (Layer, 3, Some(600)),
                (Layer, 15, Some(800)),
                (Postamble, 14, None),
            ]),
            vec![
                (Inserted, Some(3), None),
                (Modified, None, Some("postamble"))
            ]
        );
    }

    #[test]
    fn a_layer_whose_height_changed_is_modified_not_deleted_and_inserted() {
        use SegmentKind::{Layer, Postamble, Preamble};
        assert_eq!(
            named(&[
                (Preamble, 0, None),
                (Layer, 1, Some(200)),
                (Layer, 12, Some(450)),
                (Layer, 3, Some(600)),
                (Postamble, 4, None),
            ]),
            vec![(FindingKind::Modified, Some(2), None)]
        );
    }
}
