//! Helpers for tests against a real `weft node run` process on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_core::SigningKey;
use weft_core::model::{DataType, DigitalAsset, File, Payload, RecordOwnership};
use weft_core::{Fingerprint, HashAlgo, ResourceId};
use weft_ledger::{Signer, Transaction};

use super::run;

pub fn org(home: &Path, name: &str) -> String {
    run(
        home,
        &["org", "add", name, "--country", "DE", "--town", "Aachen"],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// A running node; killed (SIGKILL) if the test ends without stopping it.
pub struct Node {
    pub child: Child,
    pub home: PathBuf,
    pub url: String,
    /// The TCP ingest address, if the node listens for it.
    pub tcp: Option<String>,
}

impl Node {
    /// Starts `weft node run` on a free loopback port and waits until it listens.
    pub fn start(home: &Path) -> Node {
        Self::start_with(home, &[])
    }

    /// [`Node::start`] with more arguments to `weft node run`.
    pub fn start_with(home: &Path, extra: &[&str]) -> Node {
        Self::start_under(home, &[], extra)
    }

    /// [`Node::start_with`], the node run by `prefix` (e.g. `sh -c 'ulimit -n 1024; exec "$@"' sh`).
    pub fn start_under(home: &Path, prefix: &[&str], extra: &[&str]) -> Node {
        Self::start_full(home, prefix, "127.0.0.1:0", extra)
    }

    /// [`Node::start`] with its API on `api` (`127.0.0.1:PORT`; see [`free_port`]).
    pub fn start_on(home: &Path, api: &str) -> Node {
        Self::start_full(home, &[], api, &[])
    }

    fn start_full(home: &Path, prefix: &[&str], api: &str, extra: &[&str]) -> Node {
        let addr_file = home.join("node.addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_weft"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_weft")),
        };
        let mut child = command
            .arg("--home")
            .arg(home)
            .args(["node", "run", "--api", api])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && text.ends_with('\n')
            {
                break text;
            }
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("the node exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "the node did not listen in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = address.lines();
        let api = lines.next().expect("the API address").trim().to_string();
        let (mut tcp, mut tls) = (None, false);
        for line in lines {
            if let Some(address) = line.strip_prefix("tcp ") {
                tcp = Some(address.trim().to_string());
            }
            tls |= line.trim() == "tls";
        }
        let scheme = if tls { "https" } else { "http" };
        Node {
            child,
            home: home.to_path_buf(),
            url: format!("{scheme}://{api}"),
            tcp,
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not stop in 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn cli(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.extend(["--node", &self.url]);
        run(&self.home, &all, code)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address no one listens on now (the port the system gave a listener just closed):
/// for nodes that must know each other's addresses before they start.
pub fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    address.to_string()
}

/// An HTTP client for tests. Every request ends within 5 minutes: a node that never answers
/// fails the test instead of hanging it (longer than any wait a test makes on purpose).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .into()
}

/// (status, body as JSON or as a string).
pub fn http(method: &str, url: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    let agent = agent();
    let response = match method {
        "GET" => agent.get(url).call(),
        _ => {
            let mut request = agent.post(url);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            request.send(body)
        }
    };
    let mut response = response.expect("the node answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
    http(
        "POST",
        url,
        Some("application/json"),
        body.to_string().as_bytes(),
    )
}

pub fn claim_tx(home: &Path, issuer: &str, content: &[u8], file_id: &str) -> Transaction {
    claim_tx_on("node-test", home, issuer, content, file_id)
}

/// [`claim_tx`] on the chain named `chain`.
pub fn claim_tx_on(
    chain: &str,
    home: &Path,
    issuer: &str,
    content: &[u8],
    file_id: &str,
) -> Transaction {
    let key = SigningKey::from_text(
        &std::fs::read_to_string(home.join("keys").join(format!("{issuer}.key"))).expect("key"),
    )
    .expect("key parses");
    let chain = weft_core::ChainId::from_name(chain).expect("chain");
    let issuer = ResourceId::from_hex(issuer).expect("id");
    let payload = Payload::RecordOwnership(RecordOwnership {
        issuer,
        product_data: DigitalAsset {
            fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, content),
            public: false,
            doi: None,
            doi_no_redirect: None,
            file: File {
                id: file_id.into(),
                version_ids: vec!["1".into()],
                descriptions: vec![],
            },
            data_type: DataType::Geometry3d,
        },
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    Transaction::sign(chain, now, Signer::Resource(issuer), &key, payload).expect("sign")
}

pub fn encoded(tx: &Transaction) -> String {
    hex::encode(weft_core::encoding::encode(tx))
}

/// A new home; each `(old, new)` replaces a line of the config.toml `weft init` wrote. Blocks
/// are sealed 100 ms after their first transaction (the default is 1 s), so that tests
/// submitting one transaction at a time run quickly.
pub fn new_home(config: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    run(&home, &["init", "--chain-id", "node-test"], 0);
    let path = home.join("config.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    for (old, new) in [("interval_ms = 1000", "interval_ms = 100")]
        .iter()
        .chain(config)
    {
        assert!(text.contains(old), "config.toml has no line {old:?}");
        text = text.replace(old, new);
    }
    std::fs::write(&path, text).expect("config");
    (dir, home)
}

/// A TCP connection to `target` from the loopback address `source` (any of 127.0.0.0/8), so a
/// test can play clients at several addresses.
pub fn connect_from(
    source: [u8; 4],
    target: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let socket = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    bind(&socket, &std::net::SocketAddr::from((source, 0)))?;
    connect(&socket, &target)?;
    Ok(std::net::TcpStream::from(socket))
}

/// Raises this process's soft open-file limit to its hard one (a test that opens many
/// connections itself).
pub fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Polls `probe` every 20 ms until it gives a value, for at most `seconds`; panics with the
/// last reason otherwise.
pub fn wait_until<T>(seconds: u64, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match probe() {
            Ok(value) => return value,
            Err(reason) => assert!(
                Instant::now() < deadline,
                "not within {seconds} s: {reason}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The node's `/metrics` text.
pub fn metrics(url: &str) -> String {
    agent()
        .get(&format!("{url}/metrics"))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text")
}

/// The value of one metric line (`name value`), 0 if absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// A new home whose node serves TLS with a fresh self-signed certificate, and that certificate.
/// `config` as for [`new_home`].
pub fn tls_home_with(
    config: &[(&str, &str)],
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let mut all = vec![
        ("cert = \"\"", "cert = \"tls/cert.pem\""),
        ("key = \"\"", "key = \"tls/key.pem\""),
    ];
    all.extend_from_slice(config);
    let (dir, home) = new_home(&all);
    run(
        &home,
        &[
            "tls",
            "self-signed",
            "--out",
            home.join("tls").to_str().expect("utf-8"),
        ],
        0,
    );
    let cert = home.join("tls").join("cert.pem");
    (dir, home, cert)
}

/// [`tls_home_with`] and no other change.
pub fn tls_home() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    tls_home_with(&[])
}

/// Runs `weft --ca CA ARGS…` (a client that trusts the certificate `ca`).
pub fn with_ca(home: &Path, ca: &Path, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--ca", ca.to_str().expect("utf-8")];
    all.extend(args);
    run(home, &all, code)
}

/// Records a small JSON reading through TCP ingest over TLS (`weft --ca CA ingest tcp`, to the
/// node running on `home`); the command's JSON answer.
pub fn json_reading_over_tls(home: &Path, ca: &Path) -> Value {
    let file = home.join("reading.json");
    std::fs::write(&file, br#"{"temp": 21.5}"#).expect("write");
    with_ca(
        home,
        ca,
        &[
            "ingest",
            "tcp",
            file.to_str().expect("utf-8"),
            "--content-type",
            "application/json",
        ],
        0,
    )
}
