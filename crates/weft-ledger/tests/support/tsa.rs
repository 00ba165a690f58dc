//! OpenSSL's own time-stamping authority (`openssl ts -reply`), for tests: a CA and a TSA
//! certificate made with `openssl req`/`x509`, and a reply to each DER request. Shared by the
//! ledger's tests of the token checks and the CLI's tests of a node obtaining tokens over HTTP.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tsa {
    pub dir: PathBuf,
    /// The CA certificate (DER), what a verifier holds.
    pub ca_der: Vec<u8>,
    /// The same, PEM.
    pub ca_pem: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (scripts/test installs it when missing)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn new_key(dir: &Path, name: &str, kind: &str) {
    let out = format!("{name}.key");
    match kind {
        "rsa" => openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &out,
            ],
        ),
        _ => openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &out,
            ],
        ),
    }
}

impl Tsa {
    /// A TSA in `dir` (made if missing) with `kind` keys (`ec` or `rsa`); its certificate has
    /// the time-stamping extended key usage only if `eku`.
    pub fn new(dir: &Path, kind: &str, eku: bool) -> Tsa {
        std::fs::create_dir_all(dir).expect("mkdir");
        new_key(dir, "ca", kind);
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                "/CN=weft test TSA root",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        );
        new_key(dir, "tsa", kind);
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "tsa.key",
                "-out",
                "tsa.csr",
                "-subj",
                "/CN=weft test TSA",
            ],
        );
        let usage = if eku {
            "extendedKeyUsage=critical,timeStamping\n"
        } else {
            "extendedKeyUsage=critical,codeSigning\n"
        };
        std::fs::write(
            dir.join("tsa.ext"),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{usage}"),
        )
        .expect("write");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "tsa.crt",
                "-days",
                "30",
                "-extfile",
                "tsa.ext",
            ],
        );
        std::fs::write(dir.join("serial"), "01\n").expect("write");
        std::fs::write(
            dir.join("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = weft_test\n[ weft_test ]\ndir = {}\nserial = $dir/serial\n\
                 crypto_device = builtin\nsigner_cert = $dir/tsa.crt\ncerts = $dir/ca.crt\n\
                 signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.3.6.1.4.1.4146.2.3\n\
                 digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = yes\ntsa_name = yes\n\
                 ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                dir.display()
            ),
        )
        .expect("write");
        openssl(
            dir,
            &["x509", "-in", "ca.crt", "-outform", "DER", "-out", "ca.der"],
        );
        Tsa {
            dir: dir.to_path_buf(),
            ca_der: std::fs::read(dir.join("ca.der")).expect("read"),
            ca_pem: dir.join("ca.crt"),
        }
    }

    /// OpenSSL's reply (a DER `TimeStampResp`) to a DER `TimeStampReq`.
    pub fn reply(&self, request: &[u8]) -> Vec<u8> {
        let name = format!("request-{}", std::process::id());
        let (query, response) = (format!("{name}.tsq"), format!("{name}.tsr"));
        std::fs::write(self.dir.join(&query), request).expect("write");
        openssl(
            &self.dir,
            &[
                "ts",
                "-reply",
                "-config",
                "tsa.cnf",
                "-queryfile",
                &query,
                "-out",
                &response,
            ],
        );
        std::fs::read(self.dir.join(&response)).expect("read")
    }
}
