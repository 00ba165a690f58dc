//! The node's `/openapi.json` against what the node really answers: every endpoint it
//! documents is called on a real node, successes and client mistakes alike, and each answer's
//! status must be documented and its body must validate against the documented schema.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use weft_core::{Fingerprint, HashAlgo, SigningKey};

mod common;
use common::node::*;

/// An answer's `content-type` header, empty if it has none.
fn content_type<B>(response: &ureq::http::Response<B>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Fetches `/openapi.json` and checks answers against it.
struct Spec {
    document: Value,
    /// (method, path template) pairs the document has.
    operations: BTreeSet<(String, String)>,
    /// (method, path template) pairs answers were checked for.
    checked: BTreeSet<(String, String)>,
}

impl Spec {
    fn fetch(url: &str) -> Spec {
        let mut response = agent()
            .get(format!("{url}/openapi.json"))
            .call()
            .expect("answers");
        assert_eq!(response.status(), 200);
        let content_type = content_type(&response);
        assert_eq!(content_type, "application/json");
        let document: Value =
            serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
                .expect("the document is JSON");
        assert!(
            document["openapi"].as_str().unwrap_or("").starts_with("3."),
            "not OpenAPI 3: {}",
            document["openapi"]
        );
        let mut operations = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
        Spec {
            document,
            operations,
            checked: BTreeSet::new(),
        }
    }

    /// Sends a request and checks its answer against the document: the status must be
    /// documented for (`method`, `template`), and a JSON body must validate against its schema.
    fn call(
        &mut self,
        method: &str,
        template: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let agent = agent();
        let response = match method {
            "GET" => {
                let mut request = agent.get(url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            _ => {
                let mut request = agent.post(url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body.unwrap_or_default())
            }
        };
        let mut response = response.expect("the node answers");
        let status = response.status().as_u16();
        let content_type = content_type(&response);
        let text = response.body_mut().read_to_string().expect("body");
        let operation = &self.document["paths"][template][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is answered but not in the document"
        );
        let documented = &operation["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {url} answered {status}, which the document does not list for {template}: {text}"
        );
        let content = documented["content"]
            .as_object()
            .expect("documented content");
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let schema = &content.get(media).unwrap_or_else(|| {
            panic!("{method} {template} {status}: content type {media} is not documented")
        })["schema"];
        let value = if media == "application/json" {
            let value: Value = serde_json::from_str(&text).expect("a JSON answer");
            if !schema.is_null() {
                // The schema with the document's components beside it, so `$ref`s resolve.
                let mut root = schema.clone();
                root["components"] = self.document["components"].clone();
                let validator = jsonschema::validator_for(&root).unwrap_or_else(|error| {
                    panic!("{method} {template} {status}: the schema does not compile: {error}")
                });
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|error| format!("{} at {}", error, error.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{method} {url} answered {status} with a body the document does not describe:\n{}\nbody: {value}",
                    errors.join("\n")
                );
            }
            value
        } else {
            Value::String(text)
        };
        self.checked
            .insert((method.to_string(), template.to_string()));
        (status, value)
    }
}

#[test]
fn every_documented_endpoint_answers_as_the_openapi_document_says() {
    let (_dir, home) = new_home(&[]);
    let node = Node::start(&home);
    let base = node.url.clone();
    let mut spec = Spec::fetch(&base);
    let json_header = [("content-type", "application/json")];

    // A little world: an organisation registered and a file claimed through the node.
    let org = org(&home, "Openapi Works");
    let tx = claim_tx(&home, &org, b"part.step", "part.step");
    let encoded_tx = encoded(&tx);
    let post = |spec: &mut Spec, template: &str, body: &Value| {
        spec.call(
            "POST",
            template,
            &format!("{base}{template}"),
            &json_header,
            Some(body.to_string().as_bytes()),
        )
    };
    let (status, committed) = post(
        &mut spec,
        "/v1/transactions",
        &json!({"transaction": encoded_tx}),
    );
    assert_eq!(status, 200, "{committed}");
    let tx_id = committed["tx_id"].as_str().expect("id").to_string();
    // The same claim again is refused by a rule; hostile bodies get their 4xx.
    assert_eq!(
        post(
            &mut spec,
            "/v1/transactions",
            &json!({"transaction": encoded_tx})
        )
        .0,
        422
    );
    assert_eq!(
        post(&mut spec, "/v1/transactions", &json!({"transaction": "zz"})).0,
        400
    );
    assert_eq!(
        post(&mut spec, "/v1/transactions", &json!({"tx": "00"})).0,
        422
    );
    let status = spec
        .call(
            "POST",
            "/v1/transactions",
            &format!("{base}/v1/transactions"),
            &[],
            Some(b"{"),
        )
        .0;
    assert_eq!(status, 415);
    let status = spec
        .call(
            "POST",
            "/v1/transactions",
            &format!("{base}/v1/transactions"),
            &json_header,
            Some(b"{\"transaction\": "),
        )
        .0;
    assert_eq!(status, 400);
    let second = claim_tx(&home, &org, b"bracket.step", "bracket.step");
    let (status, batch) = post(
        &mut spec,
        "/v1/transactions/batch",
        &json!({"transactions": [encoded(&second), encoded_tx]}),
    );
    assert_eq!(
        (
            status,
            batch["committed"].as_u64(),
            batch["rejected"].as_u64()
        ),
        (200, Some(1), Some(1)),
        "{batch}"
    );
    assert_eq!(
        post(
            &mut spec,
            "/v1/transactions/batch",
            &json!({"transactions": []})
        )
        .0,
        400
    );

    // wait=false: 202 once durably queued; GET then says queued (202) or committed (200).
    let queue = |spec: &mut Spec, template: &str, body: Value| {
        spec.call(
            "POST",
            template,
            &format!("{base}{template}?wait=false"),
            &json_header,
            Some(body.to_string().as_bytes()),
        )
    };
    let third = claim_tx(&home, &org, b"queued part", "queued");
    let (status, queued) = queue(
        &mut spec,
        "/v1/transactions",
        json!({"transaction": encoded(&third)}),
    );
    assert_eq!(status, 202, "{queued}");
    let fourth = claim_tx(&home, &org, b"queued batch part", "queued");
    let (status, queued) = queue(
        &mut spec,
        "/v1/transactions/batch",
        json!({"transactions": [encoded(&fourth)]}),
    );
    assert_eq!(status, 202, "{queued}");
    let (status, _) = spec.call(
        "GET",
        "/v1/transactions/{id}",
        &format!("{base}/v1/transactions/{}", third.id().to_hex()),
        &[],
        None,
    );
    assert!(status == 202 || status == 200, "{status}");

    let witnessed = spec.call(
        "POST",
        "/add-checkpoint",
        &format!("{base}/add-checkpoint"),
        &[("content-type", "text/plain")],
        Some(b"old 0\n\n"),
    );
    assert_eq!(witnessed.0, 404, "no witness here: {}", witnessed.1);
    let mut get = |template: &str, concrete: &str| {
        spec.call("GET", template, &format!("{base}{concrete}"), &[], None)
    };
    assert_eq!(get("/v1/status", "/v1/status").0, 200);
    // A node on its own has no network (tests/network/commands.rs checks the 200 answers of a
    // network node against the document).
    assert_eq!(get("/v1/net/status", "/v1/net/status").0, 404);
    assert_eq!(get("/v1/net/join", "/v1/net/join").0, 404);
    assert_eq!(get("/v1/chain", "/v1/chain").0, 200);
    // This node witnesses no chain (tests/network/witness.rs: one that does).
    assert_eq!(get("/v1/witness", "/v1/witness").0, 404);
    // Nor publishes to witnesses (tests/witness.rs: one that does).
    assert_eq!(get("/v1/publish", "/v1/publish").0, 404);
    assert_eq!(
        get("/v1/checkpoint/witnessed", "/v1/checkpoint/witnessed").0,
        404
    );
    // No other chain is registered here: none anchored (tests/anchor.rs: some are).
    let (code, anchors) = get("/v1/anchors", "/v1/anchors");
    assert_eq!(code, 200);
    assert_eq!(anchors["chains"], serde_json::json!([]), "{anchors}");
    assert!(anchors["anchoring"].is_null(), "{anchors}");
    // Checkpoints (docs/checkpoints.md).
    let (code, note) = get("/checkpoint", "/checkpoint");
    assert_eq!(code, 200);
    assert!(
        note.as_str().is_some_and(|note| note.starts_with("weft/")),
        "{note}"
    );
    assert_eq!(get("/v1/checkpoint", "/v1/checkpoint").0, 200);
    assert_eq!(get("/v1/checkpoint", "/v1/checkpoint?size=1").0, 200);
    assert_eq!(get("/v1/checkpoint", "/v1/checkpoint?size=0").0, 400);
    assert_eq!(get("/v1/checkpoint", "/v1/checkpoint?size=x").0, 400);
    assert_eq!(get("/v1/checkpoint", "/v1/checkpoint?size=99999").0, 404);
    let consistency = "/v1/checkpoint/consistency";
    assert_eq!(
        get(consistency, &format!("{consistency}?old=1&new=2")).0,
        200
    );
    assert_eq!(
        get(consistency, &format!("{consistency}?old=0&new=2")).0,
        400
    );
    assert_eq!(
        get(consistency, &format!("{consistency}?old=3&new=2")).0,
        400
    );
    assert_eq!(
        get(consistency, &format!("{consistency}?old=1&new=99999")).0,
        404
    );
    let tlog = "/v1/transactions/{id}/tlog-proof";
    assert_eq!(
        get(tlog, &format!("/v1/transactions/{tx_id}/tlog-proof")).0,
        200
    );
    assert_eq!(
        get(
            tlog,
            &format!("/v1/transactions/{}/tlog-proof", "0".repeat(64))
        )
        .0,
        404
    );
    assert_eq!(get(tlog, "/v1/transactions/xyz/tlog-proof").0, 400);
    assert_eq!(get("/v1/blocks/{block}", "/v1/blocks/1").0, 200);
    assert_eq!(get("/v1/blocks/{block}", "/v1/blocks/99999").0, 404);
    assert_eq!(get("/v1/blocks/{block}", "/v1/blocks/top").0, 400);
    let (_, genesis) = get("/v1/blocks/{block}", "/v1/blocks/0");
    let genesis_hash = genesis["hash"].as_str().expect("hash").to_string();
    let (code, by_hash) = get("/v1/blocks/{block}", &format!("/v1/blocks/{genesis_hash}"));
    assert_eq!((code, &by_hash), (200, &genesis));
    let unknown = format!("/v1/blocks/{}", "0".repeat(64));
    assert_eq!(get("/v1/blocks/{block}", &unknown).0, 404);
    assert_eq!(
        get(
            "/v1/transactions/{id}",
            &format!("/v1/transactions/{tx_id}")
        )
        .0,
        200
    );
    assert_eq!(
        get(
            "/v1/transactions/{id}",
            &format!("/v1/transactions/{}", "0".repeat(64))
        )
        .0,
        404
    );
    assert_eq!(get("/v1/transactions/{id}", "/v1/transactions/xyz").0, 400);
    assert_eq!(
        get(
            "/v1/resources",
            &format!("/v1/resources?prefix={}", &org[..8])
        )
        .0,
        200
    );
    assert_eq!(get("/v1/resources", "/v1/resources?prefix=zz").0, 400);
    let (code, found) = get(
        "/v1/transactions",
        &format!("/v1/transactions?prefix={}", &tx_id[..8]),
    );
    assert_eq!(code, 200);
    assert!(found["ids"].to_string().contains(&tx_id), "{found}");
    assert_eq!(
        get("/v1/transactions", "/v1/transactions?prefix=abc").0,
        400
    );
    assert_eq!(get("/v1/resources", "/v1/resources").0, 400);
    assert_eq!(
        get("/v1/resources/{id}", &format!("/v1/resources/{org}")).0,
        200
    );
    assert_eq!(
        get(
            "/v1/resources/{id}",
            &format!("/v1/resources/{}", "1".repeat(64))
        )
        .0,
        404
    );
    let key = SigningKey::generate().expect("key").public_key().to_hex();
    assert_eq!(
        get(
            "/v1/resources/{id}/keys/{key}",
            &format!("/v1/resources/{org}/keys/{key}")
        )
        .0,
        200
    );
    assert_eq!(
        get(
            "/v1/resources/{id}/keys/{key}",
            &format!("/v1/resources/{org}/keys/nokey")
        )
        .0,
        400
    );
    let fingerprint = Fingerprint::of_bytes(HashAlgo::Sha256, b"part.step").to_string();
    let unknown = Fingerprint::of_bytes(HashAlgo::Sha256, b"nothing").to_string();
    assert_eq!(
        get(
            "/v1/assets/{fingerprint}",
            &format!("/v1/assets/{fingerprint}")
        )
        .0,
        200
    );
    assert_eq!(
        get(
            "/v1/assets/{fingerprint}",
            &format!("/v1/assets/{fingerprint}?recipient={org}")
        )
        .0,
        200
    );
    assert_eq!(
        get("/v1/assets/{fingerprint}", &format!("/v1/assets/{unknown}")).0,
        200
    );
    assert_eq!(get("/v1/assets/{fingerprint}", "/v1/assets/md5:00").0, 400);
    assert_eq!(
        get(
            "/v1/claims/{fingerprint}",
            &format!("/v1/claims/{fingerprint}")
        )
        .0,
        200
    );
    assert_eq!(
        get("/v1/claims/{fingerprint}", &format!("/v1/claims/{unknown}")).0,
        404
    );
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(get(path, path).0, 200, "{path}");
    }

    // The admin endpoints: no token, a wrong one, the right one.
    let token = std::fs::read_to_string(home.join("admin.token")).expect("token");
    let bearer = format!("Bearer {}", token.trim());
    let admin = |spec: &mut Spec, template: &str, authorization: Option<&str>, body: &Value| {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(authorization) = authorization {
            headers.push(("authorization", authorization));
        }
        spec.call(
            "POST",
            template,
            &format!("{base}{template}"),
            &headers,
            Some(body.to_string().as_bytes()),
        )
    };
    let resource = json!({
        "resource": {"kind": "organization", "name": "Spec Farm", "address": {"town": "Graz", "country": "AT"}},
        "key": SigningKey::generate().expect("key").public_key().to_hex(),
    });
    assert_eq!(
        admin(&mut spec, "/v1/admin/resources", None, &resource).0,
        401
    );
    assert_eq!(
        admin(
            &mut spec,
            "/v1/admin/resources",
            Some("Bearer nope"),
            &resource
        )
        .0,
        403
    );
    assert_eq!(
        admin(&mut spec, "/v1/admin/resources", Some(&bearer), &resource).0,
        200
    );
    assert_eq!(
        admin(
            &mut spec,
            "/v1/admin/resources",
            Some(&bearer),
            &json!({"resource": 1})
        )
        .0,
        422
    );
    assert_eq!(
        admin(&mut spec, "/v1/admin/reload", Some(&bearer), &json!({})).0,
        200
    );
    assert_eq!(
        admin(&mut spec, "/v1/admin/reload", None, &json!({})).0,
        401
    );

    let unchecked: Vec<_> = spec.operations.difference(&spec.checked).collect();
    assert!(
        unchecked.is_empty(),
        "documented but never called: {unchecked:?}"
    );
    assert!(node.terminate().success());
}
