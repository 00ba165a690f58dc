//! TLS on the client side (`--ca`), and `weft tls self-signed` for testing a TLS node.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::output::Output;

pub use weft_client::tls::certificates;

/// `weft tls self-signed --out DIR [--name NAME…]`: a certificate for the given host names and
/// IP addresses and its key (mode 0600), for a node under test. Production nodes use a
/// certificate from the members' own CA. The hint for `config.toml` names the files relative to
/// `home` when they are inside it (the node reads `[tls]` paths relative to its home).
pub fn self_signed(output: &Output, home: &Path, out: &Path, names: Vec<String>) -> Result<()> {
    let names = if names.is_empty() {
        vec!["127.0.0.1".to_string(), "localhost".to_string()]
    } else {
        names
    };
    let certified = rcgen::generate_simple_self_signed(names.clone())
        .context("cannot make the certificate (is every --name a host name or IP address?)")?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let cert: PathBuf = out.join("cert.pem");
    let key: PathBuf = out.join("key.pem");
    for path in [&cert, &key] {
        if path.exists() {
            bail!(
                "{} exists; remove it or choose another --out",
                path.display()
            );
        }
    }
    write_private(&key, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, certified.cert.pem())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    let plain = |path: &Path| -> PathBuf {
        path.components()
            .filter(|part| *part != std::path::Component::CurDir)
            .collect()
    };
    let in_config = |path: &Path| {
        let (path, home) = (plain(path), plain(home));
        path.strip_prefix(&home)
            .unwrap_or(&path)
            .display()
            .to_string()
    };
    let (cert_setting, key_setting) = (in_config(&cert), in_config(&key));
    output.emit(json!({"cert": cert, "key": key, "names": names}), || {
        format!(
            "wrote {} and {} (for {}); in config.toml:\n  [tls]\n  cert = \"{}\"\n  key = \"{}\"\n\
                 clients trust it with --ca {}",
            cert.display(),
            key.display(),
            names.join(", "),
            cert_setting,
            key_setting,
            cert.display()
        )
    });
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
