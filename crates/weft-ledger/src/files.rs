//! Files only their owner may use (README, "Files and permissions").
//!
//! Two kinds, two policies:
//!
//! - **Secrets** (signing keys, the admin and ingest tokens, the second-tier seal key, TLS and
//!   G-code receiver private keys) are refused when group or others have any access to them:
//!   a secret that others could read may already be copied, so weft will not go on using it
//!   silently. [`read_secret`] is the one reader of every secret, in the node and the CLI; its
//!   message says `chmod 600 FILE`.
//! - **Ledger files** (the database, the queue journal, evidence, the network's state, the
//!   node's address file) are not secret, but they hold what other companies recorded, which is
//!   not everyone's to read. They are created owner-only ([`FILE_MODE`], [`DIR_MODE`],
//!   [`create_private`], [`create_private_dir_all`]); ones made by an earlier weft are tightened
//!   with [`restrict`] when the CLI opens a home (`weft node run` included).
//!
//! Here rather than in the node or the CLI because both read secrets and create these files,
//! and the store creates the database.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every secret and ledger file weft creates.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory weft creates for itself (the home, `keys/`, `network/`).
pub const DIR_MODE: u32 = 0o700;
/// The most a secret file may hold: an 8192-bit RSA key in PEM is under 7 KiB.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Why a secret file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Group or others may use the file.
    #[error(
        "{what} {} is {access} by other users (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed {
        what: String,
        path: PathBuf,
        mode: u32,
        access: &'static str,
    },
    #[error("{what} {} is {len} bytes, too large to be a key", path.display())]
    TooLarge {
        what: String,
        path: PathBuf,
        len: u64,
    },
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: io::Error,
    },
}

impl SecretError {
    /// The file does not exist (a token file is then made).
    pub fn is_missing(&self) -> bool {
        matches!(self, SecretError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Reads a secret file's text (`what` names it in errors: "key file", "seal key", "tls.key"),
/// refusing one that group or others may read, write or execute, or one too large to be a key.
/// The mode is checked on the opened file, so a file swapped after the check is not read.
pub fn read_secret(path: &Path, what: &str) -> Result<String, SecretError> {
    let io_error = |source| SecretError::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let access = if mode & 0o044 != 0 {
            "readable"
        } else if mode & 0o022 != 0 {
            "writable"
        } else {
            "open"
        };
        return Err(SecretError::Exposed {
            what: what.to_string(),
            path: path.to_path_buf(),
            mode,
            access,
        });
    }
    if metadata.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge {
            what: what.to_string(),
            path: path.to_path_buf(),
            len: metadata.len(),
        });
    }
    let mut text = String::new();
    file.take(MAX_SECRET_BYTES)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    Ok(text)
}

/// Takes every permission of group and others off an existing file or directory. Returns its
/// mode before, if it changed anything; nothing there is not an error.
pub fn restrict(path: &Path) -> io::Result<Option<u32>> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & !0o077))?;
    Ok(Some(mode & 0o777))
}

/// Creates an empty file of [`FILE_MODE`] if nothing is at `path` (for files that another
/// library then opens, such as redb's). Returns whether it created one.
pub fn create_private(path: &Path) -> io::Result<bool> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Writes `path` whole through a temporary file beside it, created owner-only ([`FILE_MODE`])
/// and renamed into place, so a reader sees the old content or the new, never a part; with
/// `sync`, the content is on disk before the rename.
pub fn write_private_atomically(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("tmp");
    // A leftover of a crash would keep its mode through a truncating open: start afresh.
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    fs::rename(&temporary, path)
}

/// Creates a directory and its missing parents with [`DIR_MODE`]; an existing one is left as
/// it is.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_mode(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join(format!("secret-{mode:o}"));
        fs::write(&path, "text\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_secret_others_may_use_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o601] {
            let path = file_with_mode(dir.path(), mode);
            let error = read_secret(&path, "seal key").expect_err("refused");
            let message = error.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{message}"
            );
            assert!(message.starts_with("seal key "), "{message}");
        }
        for mode in [0o600, 0o400] {
            let path = file_with_mode(dir.path(), mode);
            assert_eq!(read_secret(&path, "seal key").expect("read"), "text\n");
        }
        let missing = read_secret(&dir.path().join("none"), "token file").expect_err("missing");
        assert!(missing.is_missing());
    }

    #[test]
    fn an_oversized_secret_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        fs::write(&path, vec![b'a'; MAX_SECRET_BYTES as usize + 1]).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let error = read_secret(&path, "key file").expect_err("too large");
        assert!(matches!(error, SecretError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn restrict_takes_group_and_other_permissions_off_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = file_with_mode(dir.path(), 0o664);
        assert_eq!(restrict(&path).expect("restrict"), Some(0o664));
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(restrict(&path).expect("again"), None);
        assert_eq!(restrict(&dir.path().join("none")).expect("missing"), None);

        let sub = dir.path().join("a").join("b");
        create_private_dir_all(&sub).expect("mkdir");
        for made in [dir.path().join("a"), sub] {
            let mode = fs::metadata(&made).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{}: {mode:o}", made.display());
        }
        let created = dir.path().join("db");
        assert!(create_private(&created).expect("create"));
        assert!(!create_private(&created).expect("exists"));
        let mode = fs::metadata(&created).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0);
    }
}
