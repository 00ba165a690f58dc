//! How a node finds and keeps its peers: seeds, the addresses it learnt, and the number of
//! connections it keeps.

use serde_json::{Value, json};

use crate::cluster::{Cluster, keys_in, metrics_of, wait_net_status};
use crate::common::weft;
use crate::{THIN, one_network_at_a_time};

/// Rewrites a node's configuration to name validator `seed` alone as its seed.
fn only_seed(cluster: &Cluster, node: usize, seed: usize) {
    let only = cluster.key(seed);
    let config_path = cluster.members[node].home.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .expect("config")
        .parse()
        .expect("TOML");
    let network = config
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
        .expect("[network]");
    let seeds: Vec<toml::Value> = network["seeds"]
        .as_array()
        .expect("seeds")
        .iter()
        .filter(|entry| entry.as_str().is_some_and(|entry| entry.starts_with(&only)))
        .cloned()
        .collect();
    assert_eq!(seeds.len(), 1, "{network:?}");
    network.insert("seeds".into(), toml::Value::Array(seeds));
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("written");
}

/// A node dials, besides its configured seeds, the peers it heard from before at the addresses
/// they gave it (its address book, kept across restarts): restarted when its only seed is gone,
/// it still finds the network and follows it.
#[test]
fn a_node_finds_the_network_from_one_seed_or_through_the_addresses_it_learnt() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "1"]);
    let thin_api = cluster.members[THIN].api.clone();
    let validators: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();
    // Restarted knowing validator 0 alone, with no address book: it learns where the other
    // validators are from that seed (the signed addresses it passes on) and connects to every
    // one.
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() >= Some(3)
    });
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    std::fs::remove_file(cluster.members[THIN].home.join("network/addresses.redb"))
        .expect("address book removed");
    cluster.restart(THIN);
    wait_net_status(
        &thin_api,
        "the thin node, given one seed, connected to every validator",
        |net| {
            let peers = net["peers"].as_array().cloned().unwrap_or_default();
            validators.iter().all(|key| peers.contains(&json!(key)))
        },
    );
    // Its one seed stops: it keeps following the blocks of the other three.
    cluster.kill(0);
    let before = cluster.height(1);
    wait_net_status(&thin_api, "the thin node follows without its seed", |net| {
        net["height"].as_u64() > Some(before)
    });
    cluster.restart(0);
    // It learns where each validator is from the validators themselves.
    wait_net_status(
        &thin_api,
        "the thin node learnt the validators' addresses",
        |net| net["addresses"].as_u64() >= Some(4),
    );
    // Stopped, and its configuration names validator 0 alone as its seed; then validator 0
    // goes too (the other three keep committing): only the address book knows where the others
    // are.
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    let only = cluster.key(0);
    cluster.kill(0);
    let before = cluster.height(1);
    cluster.restart(THIN);
    // It reaches validators 1 to 3 through its address book, and follows their new blocks.
    let others: Vec<String> = (1..4).map(|index| cluster.key(index)).collect();
    let net = wait_net_status(
        &thin_api,
        "the restarted thin node found the others",
        |net| {
            let peers = net["peers"].as_array().cloned().unwrap_or_default();
            others.iter().all(|key| peers.contains(&json!(key)))
                && net["height"].as_u64() > Some(before)
        },
    );
    assert!(
        !net["peers"]
            .as_array()
            .expect("peers")
            .contains(&json!(only)),
        "{net}"
    );
    let top = cluster.height(1);
    cluster.converge(&[1, 2, 3, THIN], top);
}

/// Sets `network.connections` in a node's configuration (applied at its next start).
fn set_connections(cluster: &Cluster, node: usize, connections: i64) {
    let config_path = cluster.members[node].home.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .expect("config")
        .parse()
        .expect("TOML");
    config
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
        .expect("[network]")
        .insert("connections".into(), toml::Value::Integer(connections));
    std::fs::write(&config_path, toml::to_string(&config).expect("TOML")).expect("written");
}

/// Besides the validators, a node keeps `network.connections` peers connected: its seeds first,
/// then peers it learnt of (where they are from the signed addresses its peers pass on, that
/// they are online from the peers' `Online` lists). When the connection of one drops, another
/// takes its place (docs/network.md, "Connections").
#[test]
fn a_node_keeps_its_configured_number_of_connections_and_replaces_one_that_drops() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "1", "--archive", "3"]);
    let thin_api = cluster.members[THIN].api.clone();
    let validators: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();
    let archives: Vec<String> = (5..8).map(|index| cluster.key(index)).collect();
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() >= Some(3)
    });
    // The archive nodes dial nobody but the validators; the thin node knows validator 0
    // alone (no address book), and keeps one connection besides the validators.
    for index in 5..8 {
        cluster.kill(index);
        set_connections(&cluster, index, 0);
        cluster.restart(index);
    }
    cluster.kill(THIN);
    only_seed(&cluster, THIN, 0);
    set_connections(&cluster, THIN, 1);
    std::fs::remove_file(cluster.members[THIN].home.join("network/addresses.redb"))
        .expect("address book removed");
    cluster.restart(THIN);
    let picked_one = |net: &Value| {
        let picked = keys_in(net, "picked");
        let peers = keys_in(net, "peers");
        picked.len() == 1
            && archives.contains(&picked[0])
            && peers.contains(&picked[0])
            && validators.iter().all(|key| peers.contains(key))
    };
    let net = wait_net_status(
        &thin_api,
        "the thin node connected to every validator and to one archive node it learnt of",
        |net| picked_one(net),
    );
    assert_eq!(net["connections_wanted"], 1, "{net}");
    assert_eq!(net["dialed"], 5, "the validators and one other: {net}");
    let first = keys_in(&net, "picked")[0].clone();
    assert_eq!(metrics_of(&thin_api)("weft_net_picked_peers"), 1);
    let shown = weft(
        &cluster.members[THIN].home,
        &["net", "status", "--node", &thin_api],
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("the validators and 1 of 1 others picked") && shown.contains(&first),
        "{shown}"
    );
    let peers = keys_in(&net, "peers");
    assert_eq!(
        peers.iter().filter(|key| archives.contains(key)).count(),
        1,
        "no other archive node is connected: {net}"
    );
    // Yet it knows every archive node is online: the validators, which hear from them all,
    // list them in their `Online` messages.
    wait_net_status(&thin_api, "every archive node listed online", |net| {
        let online = keys_in(net, "online");
        archives.iter().all(|key| online.contains(key))
    });
    // The archive node it picked stops: another one takes its place.
    let gone = 5 + archives
        .iter()
        .position(|key| *key == first)
        .expect("an archive");
    cluster.kill(gone);
    wait_net_status(
        &thin_api,
        "the thin node replaced the archive node that stopped",
        |net| picked_one(net) && keys_in(net, "picked")[0] != first,
    );
    // It goes on following the chain.
    let before = cluster.height(0);
    wait_net_status(&thin_api, "the thin node follows the chain", |net| {
        net["height"].as_u64() > Some(before)
    });
}
