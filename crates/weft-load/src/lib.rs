//! Load generation for weft's benchmarks and tests: generated payloads (claims of new assets,
//! records of a chosen size), organisations to act as with their registrations, transactions
//! signed in parallel on every core, and latency percentiles. Nothing here talks to a node: the
//! `weft bench` commands and the tests send what it makes.

use std::fs;

use anyhow::Result;
use weft_core::model::*;
use weft_core::{ChainId, Fingerprint, HashAlgo, ResourceId, SigningKey};
use weft_ledger::{Signer, Transaction};

/// A `Record` of `issuer` with a body of `bytes` (the `i`-th of a benchmark: its body and
/// product code differ from the others').
pub fn generated_record(issuer: ResourceId, i: usize, bytes: usize) -> Payload {
    let mut body = vec![0u8; bytes];
    body.iter_mut()
        .enumerate()
        .for_each(|(j, b)| *b = (i + j) as u8);
    Payload::Record(Record {
        issuer,
        content_type: "application/octet-stream".into(),
        product_code: Some(format!("SN-{i}")),
        body,
    })
}

/// A generated digital asset: the SHA-256 fingerprint of `content`, file id `id`, version "A".
pub fn generated_asset(content: &[u8], id: String, data_type: DataType) -> DigitalAsset {
    DigitalAsset {
        fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, content),
        public: false,
        doi: None,
        doi_no_redirect: None,
        file: File {
            id,
            version_ids: vec!["A".into()],
            descriptions: vec![],
        },
        data_type,
    }
}

/// The environment variable that makes `weft` print its peak resident memory to standard error
/// when it exits (`weft-peak-rss-kib N`), so a benchmark can report each child process's memory.
pub const PEAK_RSS_ENV: &str = "WEFT_REPORT_PEAK_RSS";

/// The peak resident set of this process, in KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `count` organisations to act as in a benchmark: their keys, and their registrations signed
/// by `authority` (in the same order).
pub fn organizations(
    chain_id: ChainId,
    time: u64,
    authority: &SigningKey,
    count: usize,
) -> Result<(Vec<SigningKey>, Vec<Transaction>)> {
    let keys: Vec<SigningKey> = (0..count)
        .map(|_| SigningKey::generate())
        .collect::<Result<_, _>>()?;
    let registrations = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let organization = Organization {
                name: Some(format!("bench org {i}")),
                website: None,
                address: Address {
                    town: "Town".into(),
                    country: "DE".into(),
                    ..Address::default()
                },
            };
            Transaction::sign(
                chain_id,
                time,
                Signer::Authority,
                authority,
                Payload::RegisterResource(RegisterResource {
                    resource: Resource::Organization(organization),
                    key: key.public_key(),
                }),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok((keys, registrations))
}

/// Signs `count` payloads in parallel on all cores.
pub fn sign_all(
    chain_id: ChainId,
    time: u64,
    jobs: Vec<(ResourceId, usize, Payload)>,
    keys: &[SigningKey],
) -> Vec<Transaction> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per = jobs.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<(ResourceId, usize, Payload)>> = Vec::new();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        chunks.push(jobs.by_ref().take(per).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(signer, key_index, payload)| {
                            let offset = u64::from(matches!(payload, Payload::SendProductData(_)));
                            Transaction::sign(
                                chain_id,
                                time + offset,
                                Signer::Resource(signer),
                                &keys[key_index],
                                payload,
                            )
                            .expect("valid payload")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("signing does not panic"))
            .collect()
    })
}

/// p50, p90, p99 and max of latencies in ms (sorted in place).
pub fn latency_summary(latencies: &mut [f64]) -> [f64; 4] {
    latencies.sort_by(f64::total_cmp);
    [
        percentile(latencies, 0.50),
        percentile(latencies, 0.90),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank_and_the_summary_sorts() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        let sorted: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 100.0);
        let mut latencies = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(latency_summary(&mut latencies), [3.0, 5.0, 5.0, 5.0]);
        assert_eq!(latencies, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn signing_in_parallel_keeps_the_order_and_each_signer_s_key() {
        let chain_id = ChainId::from_name("load").expect("name");
        let authority = SigningKey::from_seed(&[1; 32]);
        let (keys, registrations) =
            organizations(chain_id, 1_000, &authority, 3).expect("organisations");
        assert_eq!(keys.len(), 3);
        assert_eq!(registrations.len(), 3);
        let orgs: Vec<ResourceId> = registrations
            .iter()
            .map(|tx| ResourceId(tx.id().0))
            .collect();
        let jobs: Vec<_> = (0..50)
            .map(|i| (orgs[i % 3], i % 3, generated_record(orgs[i % 3], i, 8)))
            .collect();
        let signed = sign_all(chain_id, 2_000, jobs, &keys);
        assert_eq!(signed.len(), 50);
        for (i, tx) in signed.iter().enumerate() {
            assert_eq!(tx.header.signer, Signer::Resource(orgs[i % 3]), "{i}");
            assert_eq!(tx.header.key, keys[i % 3].public_key(), "{i}");
            let Some(Payload::Record(record)) = &tx.payload else {
                panic!("a record");
            };
            assert_eq!(
                record.product_code.as_deref(),
                Some(format!("SN-{i}").as_str())
            );
            tx.verify_signature().expect("signed by its key");
        }
    }
}
