//! GraphQL on a real `weft node run` process on loopback: every answer is checked against the
//! REST API's answer for the same thing; the block subscription sees each committed block and
//! completes at SIGTERM; malformed, unknown, oversized and too-complex requests are refused.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

mod common;
use common::node::*;

/// `POST /graphql`: (status, body).
fn graphql(node: &Node, query: &str, variables: Value) -> (u16, Value) {
    post_json(
        &format!("{}/graphql", node.url),
        &json!({"query": query, "variables": variables}),
    )
}

/// The `data` of a query that must succeed without errors.
fn data(node: &Node, query: &str, variables: Value) -> Value {
    let (code, answer) = graphql(node, query, variables);
    assert_eq!(code, 200, "{answer}");
    assert!(answer.get("errors").is_none(), "{answer}");
    answer["data"].clone()
}

fn rest(node: &Node, path: &str) -> Value {
    let (code, answer) = http("GET", &format!("{}{path}", node.url), None, b"");
    assert_eq!(code, 200, "{path}: {answer}");
    answer
}

type Socket = WebSocket<TcpStream>;

/// Opens a `graphql-transport-ws` socket and subscribes to `query` as subscription "1".
fn subscribe(node: &Node, query: &str) -> Socket {
    let mut socket = open_socket(node).unwrap_or_else(|(code, _)| panic!("refused: {code}"));
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    );
    socket
}

/// Opens a `graphql-transport-ws` socket, acknowledged; or the status and `Retry-After` of the
/// node's refusal.
fn open_socket(node: &Node) -> Result<Socket, (u16, Option<String>)> {
    let address = node.url.trim_start_matches("http://");
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let stream = TcpStream::connect(address).expect("connect");
    // A bound on every read: a missing message fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let (mut socket, response) = match tungstenite::client(request, stream) {
        Ok(opened) => opened,
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            return Err((response.status().as_u16(), retry));
        }
        Err(error) => panic!("handshake: {error}"),
    };
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|value| value.to_str().unwrap_or_default()),
        Some("graphql-transport-ws")
    );
    send(&mut socket, json!({"type": "connection_init"}));
    assert_eq!(receive(&mut socket)["type"], "connection_ack");
    Ok(socket)
}

fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .expect("send");
}

/// The next JSON text message (pings are answered by the library and skipped).
fn receive(socket: &mut Socket) -> Value {
    for _ in 0..100 {
        match socket.read().expect("a message within 60 s") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON message"),
            Message::Close(frame) => panic!("the socket closed: {frame:?}"),
            _ => {}
        }
    }
    panic!("100 messages without a text message");
}

/// The next block the subscription sends.
fn next_block(socket: &mut Socket) -> Value {
    let message = receive(socket);
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "1");
    assert!(message["payload"].get("errors").is_none(), "{message}");
    message["payload"]["data"]["blocks"].clone()
}

#[test]
fn graphql_answers_what_rest_answers_and_streams_every_block() {
    let (dir, home) = new_home(&[]);
    let designer = org(&home, "Designer");
    let maker = org(&home, "Maker");
    let stranger = org(&home, "Stranger");
    let registered = home_height(&home);
    let design = dir.path().join("bracket.step");
    std::fs::write(&design, "solid bracket").expect("write");
    let design = design.to_str().expect("utf-8");
    let node = Node::start(&home);

    // Two subscriptions: one from now on, one replaying from height 1.
    let block_fields = "height hash previous txCount transactions { id kind }";
    let mut live = subscribe(
        &node,
        &format!("subscription {{ blocks {{ {block_fields} }} }}"),
    );
    let mut replay = subscribe(
        &node,
        &format!("subscription {{ blocks(from: 1) {{ {block_fields} }} }}"),
    );

    let claimed = node.cli(&["claim", design, "--as", &designer], 0);
    let sent = node.cli(&["send", design, "--from", &designer, "--to", &maker], 0);
    let claim_id = claimed["tx_id"].as_str().expect("tx id");
    let send_id = sent["tx_id"].as_str().expect("tx id");

    // The live subscription sends exactly the two new blocks, as REST has them.
    let mut previous = None;
    for (committed, id) in [(&claimed, claim_id), (&sent, send_id)] {
        let block = next_block(&mut live);
        let height = committed["height"].as_u64().expect("height");
        assert_eq!(block["height"], height);
        let rest_block = rest(&node, &format!("/v1/blocks/{height}"));
        assert_eq!(block["hash"], rest_block["hash"]);
        assert_eq!(block["previous"], rest_block["previous"]);
        assert_eq!(block["txCount"], 1);
        assert_eq!(block["transactions"][0]["id"], id);
        if let Some(previous) = previous {
            assert_eq!(block["previous"], previous);
        }
        previous = Some(block["hash"].clone());
    }
    // The replay starts at height 1 (the first registration) and skips none.
    for height in 1..=sent["height"].as_u64().expect("height") {
        let block = next_block(&mut replay);
        assert_eq!(block["height"], height);
        assert_eq!(
            block["hash"],
            rest(&node, &format!("/v1/blocks/{height}"))["hash"]
        );
    }
    assert!(registered >= 3, "three registrations before the node ran");

    // An asset with its provenance and verdict, against GET /v1/assets.
    let fingerprint = rest(&node, &format!("/v1/transactions/{claim_id}"))["payload"]
        ["body"]["productData"]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    let asset_query = "query($f: String!, $r: String) { asset(fingerprint: $f, recipient: $r) {
        fingerprint verdict owner { id name kind } claim { id height }
        history { id kind height index signedByAuthority signer { id } } productData } }";
    let asset = data(
        &node,
        asset_query,
        json!({"f": fingerprint, "r": maker.as_str()}),
    )["asset"]
        .clone();
    let rest_asset = rest(
        &node,
        &format!("/v1/assets/{fingerprint}?recipient={maker}"),
    );
    assert_eq!(asset["verdict"], "VALID");
    assert_eq!(rest_asset["verdict"], "valid");
    assert_eq!(asset["fingerprint"], rest_asset["fingerprint"]);
    assert_eq!(asset["owner"]["id"], rest_asset["owner"]["id"]);
    assert_eq!(asset["owner"]["name"], "Designer");
    assert_eq!(asset["owner"]["kind"], "organization");
    assert_eq!(asset["productData"], rest_asset["product_data"]);
    assert_eq!(asset["claim"]["id"], claim_id);
    let history = |entries: &Value, key: &str| -> Vec<Value> {
        entries
            .as_array()
            .expect("history")
            .iter()
            .map(|entry| entry[key].clone())
            .collect()
    };
    assert_eq!(
        history(&asset["history"], "id"),
        history(&rest_asset["history"], "tx_id")
    );
    assert_eq!(
        history(&asset["history"], "kind"),
        history(&rest_asset["history"], "kind")
    );
    assert_eq!(asset["history"][0]["signer"]["id"], designer.as_str());
    let stranger_view = data(
        &node,
        asset_query,
        json!({"f": fingerprint, "r": stranger.as_str()}),
    );
    assert_eq!(stranger_view["asset"]["verdict"], "NOT_RECIPIENT");
    let unknown = data(
        &node,
        asset_query,
        json!({"f": format!("sha256:{}", "ab".repeat(32)), "r": null}),
    );
    assert_eq!(unknown["asset"]["verdict"], "UNKNOWN");
    assert_eq!(unknown["asset"]["owner"], Value::Null);
    assert_eq!(unknown["asset"]["history"], json!([]));

    // A transaction, its proof and its block, against GET /v1/transactions and /v1/blocks.
    let tx = data(
        &node,
        "query($id: String!) { transaction(id: $id) {
            id height index kind time key payload proof block { hash height } } }",
        json!({"id": send_id}),
    )["transaction"]
        .clone();
    let rest_tx = rest(&node, &format!("/v1/transactions/{send_id}"));
    for (graph, rest) in [
        ("id", "tx_id"),
        ("height", "height"),
        ("index", "index"),
        ("kind", "kind"),
        ("time", "time"),
        ("key", "key"),
        ("payload", "payload"),
        ("proof", "proof"),
    ] {
        assert_eq!(tx[graph], rest_tx[rest], "transaction.{graph}");
    }
    assert_eq!(tx["block"]["height"], rest_tx["height"]);
    // The proof GraphQL serves checks offline.
    let proof = dir.path().join("send.proof.json");
    std::fs::write(&proof, tx["proof"].to_string()).expect("write");
    let checked = common::run(
        &home,
        &["proof", "verify", proof.to_str().expect("utf-8")],
        0,
    );
    assert_eq!(checked["valid"], true);

    // Blocks by height and by hash; a list stops at the head; the node and chain.
    let hash = tx["block"]["hash"].as_str().expect("hash");
    let by_both = data(
        &node,
        "query($h: Int!, $hash: String!) { byHeight: block(height: $h) { hash height txCount }
            byHash: block(hash: $hash) { hash height txCount } missing: block(height: 999999) { hash }
            blocks(from: 0, count: 100) { height } head { height hash }
            node { height head nodeType peers } chain { chainName chainId height headHash } }",
        json!({"h": rest_tx["height"], "hash": hash}),
    );
    assert_eq!(by_both["byHeight"], by_both["byHash"]);
    assert_eq!(by_both["missing"], Value::Null);
    let rest_by_hash = rest(&node, &format!("/v1/blocks/{hash}"));
    assert_eq!(rest_by_hash["height"], rest_tx["height"]);
    let status = rest(&node, "/v1/status");
    let heights = history(&by_both["blocks"], "height");
    assert_eq!(
        heights.len() as u64,
        status["height"].as_u64().expect("h") + 1
    );
    assert_eq!(by_both["head"]["hash"], status["head"]);
    assert_eq!(by_both["node"]["height"], status["height"]);
    assert_eq!(by_both["node"]["nodeType"], status["node_type"]);
    let chain = rest(&node, "/v1/chain");
    assert_eq!(by_both["chain"]["chainId"], chain["chain_id"]);
    assert_eq!(by_both["chain"]["headHash"], chain["head_hash"]);

    // A resource, its organisation and key, and the transactions that name it.
    let resource = data(
        &node,
        "query($id: String!) { resource(id: $id) { id name kind details registeredHeight
            organization { id } transactions { id } } }",
        json!({"id": maker.as_str()}),
    )["resource"]
        .clone();
    let rest_resource = rest(&node, &format!("/v1/resources/{maker}"));
    assert_eq!(resource["name"], rest_resource["name"]);
    assert_eq!(resource["details"], rest_resource["resource"]);
    assert_eq!(
        resource["registeredHeight"],
        rest_resource["registered_at"]["height"]
    );
    assert_eq!(resource["organization"], Value::Null);
    assert_eq!(
        history(&resource["transactions"], "id"),
        [json!(send_id)],
        "the maker is named by the send only"
    );
    let listed = data(
        &node,
        "query($p: String!) { resources(prefix: $p) { id } }",
        json!({"p": &maker[..10]}),
    );
    assert!(
        listed["resources"]
            .as_array()
            .expect("list")
            .contains(&json!({"id": maker.as_str()}))
    );

    // A query in the URL.
    let (code, answer) = http(
        "GET",
        &format!("{}/graphql?query=%7Bhead%7Bheight%7D%7D", node.url),
        None,
        b"",
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["data"]["head"]["height"], status["height"]);
    // The schema as SDL.
    let (code, sdl) = http("GET", &format!("{}/graphql/schema", node.url), None, b"");
    assert_eq!(code, 200);
    assert!(sdl.as_str().expect("text").contains("type Subscription"));

    refusals(&node);

    // At SIGTERM each open subscription completes and the node exits 0.
    let pid = node.child.id();
    let status = std::thread::scope(|scope| {
        let stopped = scope.spawn(|| node.terminate());
        let completed = receive(&mut live);
        assert_eq!(
            completed,
            json!({"type": "complete", "id": "1"}),
            "pid {pid}"
        );
        stopped.join().expect("terminate")
    });
    assert_eq!(status.code(), Some(0));
}

/// Height of the home's head before the node runs (`weft chain info`).
fn home_height(home: &std::path::Path) -> u64 {
    common::run(home, &["chain", "info"], 0)["height"]
        .as_u64()
        .expect("height")
}

/// Each kind of bad request gets a clear answer, and the node keeps answering.
fn refusals(node: &Node) {
    // A body that is not JSON is refused as the REST API refuses it.
    let (code, answer) = http(
        "POST",
        &format!("{}/graphql", node.url),
        Some("application/json"),
        b"{\"query\": ",
    );
    assert_eq!(code, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_json");
    // A field the schema does not have: 400, the field named.
    let (code, answer) = graphql(node, "{ head { height nosuch } }", Value::Null);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("nosuch")
    );
    // Not GraphQL at all.
    let (code, answer) = graphql(node, "{ head { ", Value::Null);
    assert_eq!(code, 400, "{answer}");
    assert!(answer["errors"].as_array().is_some_and(|e| !e.is_empty()));
    // A wrong argument type.
    let (code, answer) = graphql(node, "{ block(height: \"one\") { hash } }", Value::Null);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("height")
    );
    // A malformed id: the field is null and its error carries the code.
    let (code, answer) = graphql(
        node,
        "{ transaction(id: \"zz\") { id } head { height } }",
        Value::Null,
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["data"]["transaction"], Value::Null);
    assert!(answer["data"]["head"]["height"].is_u64());
    assert_eq!(answer["errors"][0]["extensions"]["code"], "bad_id");
    assert_eq!(answer["errors"][0]["path"], json!(["transaction"]));
    let (_, answer) = graphql(
        node,
        "{ block(height: 1, hash: \"00\") { hash } }",
        Value::Null,
    );
    assert_eq!(answer["errors"][0]["extensions"]["code"], "bad_arguments");
    // Over a list limit, and a query that would walk too much of the chain.
    let (_, answer) = graphql(
        node,
        "{ blocks(from: 0, count: 101) { height } }",
        Value::Null,
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("100"),
        "{answer}"
    );
    let (code, answer) = graphql(
        node,
        "{ blocks(from: 0, count: 100) { transactions(first: 1000) { id } } }",
        Value::Null,
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("complex"),
        "{answer}"
    );
    let deep = format!(
        "{{ head {{ transactions(first: 1) {{ {}id{} }} }} }}",
        "block { transactions(first: 1) { ".repeat(8),
        " } }".repeat(8)
    );
    let (code, answer) = graphql(node, &deep, Value::Null);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("nested too deep"),
        "{answer}"
    );
    // A subscription socket without the GraphQL subprotocol.
    let address = node.url.trim_start_matches("http://");
    let request = format!("ws://{address}/graphql")
        .into_client_request()
        .expect("request");
    let stream = TcpStream::connect(address).expect("connect");
    match tungstenite::client(request, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status().as_u16(), 400);
            let body =
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("graphql-transport-ws"), "{body}");
        }
        other => panic!(
            "expected a 400, got {:?}",
            other.map(|(_, response)| response)
        ),
    }
    // And the node still answers.
    assert_eq!(
        data(node, "{ node { nodeType } }", Value::Null)["node"]["nodeType"],
        "full"
    );
}

#[test]
fn subscription_sockets_and_the_operations_on_each_are_capped() {
    let (_dir, home) = new_home(&[
        ("graphql_sockets = 256", "graphql_sockets = 2"),
        (
            "graphql_socket_operations = 16",
            "graphql_socket_operations = 2",
        ),
    ]);
    let node = Node::start(&home);
    let blocks = "subscription { blocks { height } }";
    let mut first = subscribe(&node, blocks);
    let mut second = subscribe(&node, blocks);
    // A third socket is refused while two are open, and told when to come back.
    match open_socket(&node) {
        Err((code, retry)) => {
            assert_eq!(code, 503);
            assert_eq!(retry.as_deref(), Some("5"));
        }
        Ok(_) => panic!("a third subscription socket was opened with api.graphql_sockets = 2"),
    }
    // On one socket a second operation runs; a third is refused, and the socket goes on.
    send(
        &mut first,
        json!({"id": "2", "type": "subscribe", "payload": {"query": blocks}}),
    );
    let query = json!({"query": "{ node { nodeType } }"});
    send(
        &mut first,
        json!({"id": "3", "type": "subscribe", "payload": query}),
    );
    let refused = receive(&mut first);
    assert_eq!(refused["id"], "3", "{refused}");
    assert!(
        refused
            .to_string()
            .contains("api.graphql_socket_operations"),
        "{refused}"
    );
    // Once an operation completes, another may start.
    send(&mut first, json!({"id": "2", "type": "complete"}));
    send(
        &mut first,
        json!({"id": "4", "type": "subscribe", "payload": query}),
    );
    // Skipping what closes "3" and the completion of "2".
    let answer = (0..10)
        .map(|_| receive(&mut first))
        .find(|message| message["id"] == "4")
        .expect("an answer to 4 among the next 10 messages");
    assert_eq!(
        answer["payload"]["data"]["node"]["nodeType"], "full",
        "{answer}"
    );
    // A closed socket frees its place.
    second.close(None).expect("close");
    while second.read().is_ok() {}
    wait_until(30, || {
        open_socket(&node)
            .map(|_| ())
            .map_err(|(code, _)| format!("still refused: {code}"))
    });
    // The node still answers over HTTP.
    assert_eq!(
        data(&node, "{ node { nodeType } }", Value::Null)["node"]["nodeType"],
        "full"
    );
    drop(first);
    assert_eq!(node.terminate().code(), Some(0));
}
