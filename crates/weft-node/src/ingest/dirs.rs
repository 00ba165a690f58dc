//! The directories of one watched directory, reached through handles so that no symbolic link
//! is ever followed below it.
//!
//! A spool directory is often writable by other users (mode 0777 is common). Anyone who can
//! write there can put a symbolic link where the node expects `done/`, `failed/`, a file it is
//! about to create, or the file it is about to read. So every operation below the watched
//! directory goes through a directory handle (`openat`, `renameat`, `statat`, never a path), with
//! `O_NOFOLLOW` and, for files the node creates, `O_EXCL`. The node's own directories (`done/`,
//! `failed/`, `.weft-ingest/`) must be real directories owned by the node's user; any other is
//! refused, and nothing is written there.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

pub(super) const WORK: &str = ".weft-ingest";

/// Why a watched directory is not used this round.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unsafe {
    #[error(
        "{path} is a symbolic link; the node writes only into directories of its own \
         (remove the link)"
    )]
    Link { path: PathBuf },
    #[error(
        "{path} is owned by user {owner}, not by the node's user {node}; the node writes only \
         into directories of its own (remove it, or chown it to the node's user)"
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        node: u32,
    },
    #[error("{path} is not a directory")]
    NotDirectory { path: PathBuf },
    #[error(
        "{path} may be written by other users (mode {mode:o}); the node's directories are its \
         own (chmod go-w it)"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "{path} is the node's {role} directory under another name: someone renamed the node's \
         directories (put them back, or remove them and let the node make new ones)"
    )]
    Swapped { path: PathBuf, role: String },
}

/// In each of the node's directories: its role, written when the node first opened it, so that
/// directories renamed into each other's places (possible in a spool others may write without
/// the sticky bit) are recognised.
const ROLE: &str = ".weft-role";

/// Open handles on a watched directory and the node's directories inside it.
#[derive(Debug)]
pub(super) struct Dirs {
    pub watched_path: PathBuf,
    watched: OwnedFd,
    pub work: OwnedFd,
    pub done: OwnedFd,
    pub failed: OwnedFd,
}

/// What identifies a file's content for the check that it did not change while it was read:
/// the same inode with the same size, modification and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Version {
    device: u64,
    inode: u64,
    size: i64,
    modified: (i64, u64),
    changed: (i64, u64),
}

impl Version {
    pub fn of(stat: &Stat) -> Version {
        Version {
            device: stat.st_dev,
            inode: stat.st_ino,
            size: stat.st_size,
            modified: (stat.st_mtime, stat.st_mtime_nsec),
            changed: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }

    pub fn size(&self) -> u64 {
        u64::try_from(self.size).unwrap_or(0)
    }

    /// When it was last written, in ms since the epoch.
    pub fn modified_ms(&self) -> u64 {
        let (secs, nanos) = self.modified;
        u64::try_from(secs)
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(nanos / 1_000_000)
    }
}

const DIRECTORY: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dirs {
    /// Opens the watched directory (the operator's path, followed as given) and the node's
    /// directories in it, creating those that are missing. `Ok(Err(_))` says why the directory
    /// is not safe to use now; `Err(_)` is any other failure.
    pub fn open(watched: &Path) -> std::io::Result<Result<Dirs, Unsafe>> {
        let watched_fd = rustix::fs::open(
            watched,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut opened = Vec::with_capacity(3);
        for name in [WORK, "done", "failed"] {
            match own_directory(&watched_fd, watched, name)? {
                Ok(fd) => opened.push(fd),
                Err(refused) => return Ok(Err(refused)),
            }
        }
        let failed = opened.pop().expect("three directories were opened");
        let done = opened.pop().expect("three directories were opened");
        let work = opened.pop().expect("three directories were opened");
        Ok(Ok(Dirs {
            watched_path: watched.to_path_buf(),
            watched: watched_fd,
            work,
            done,
            failed,
        }))
    }

    pub fn watched(&self) -> &OwnedFd {
        &self.watched
    }

    /// The path of `name` in one of the directories, for messages only.
    pub fn shown(&self, dir: &str, name: &str) -> PathBuf {
        if dir.is_empty() {
            self.watched_path.join(name)
        } else {
            self.watched_path.join(dir).join(name)
        }
    }
}

/// `watched/name`, created if missing: a real directory owned by the node's user.
fn own_directory(
    watched: &OwnedFd,
    watched_path: &Path,
    name: &str,
) -> std::io::Result<Result<OwnedFd, Unsafe>> {
    let path = watched_path.join(name);
    match rustix::fs::mkdirat(watched, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(error) => return Err(error.into()),
    }
    let fd = match rustix::fs::openat(watched, name, DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        // O_NOFOLLOW on a link: ELOOP, or ENOTDIR with O_DIRECTORY.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let link = rustix::fs::statat(watched, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink);
            return Ok(Err(if link {
                Unsafe::Link { path }
            } else {
                Unsafe::NotDirectory { path }
            }));
        }
        Err(error) => return Err(error.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    let node = rustix::process::geteuid().as_raw();
    if stat.st_uid != node {
        return Ok(Err(Unsafe::Owner {
            path,
            owner: stat.st_uid,
            node,
        }));
    }
    if stat.st_mode & 0o022 != 0 {
        return Ok(Err(Unsafe::Writable {
            path,
            mode: stat.st_mode & 0o7777,
        }));
    }
    match read_own_text(&fd, ROLE)? {
        Some(role) if role.trim() == name => {}
        Some(role) => {
            return Ok(Err(Unsafe::Swapped {
                path,
                role: role.trim().chars().take(32).collect(),
            }));
        }
        // First use (or a directory made by an earlier version): it is the node's own, checked
        // above, so its role is written now.
        None => match create_new(&fd, ROLE, format!("{name}\n").as_bytes(), true) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        },
    }
    Ok(Ok(fd))
}

/// The names of the regular files (not links, not hidden) in `dir` whose names are UTF-8, sorted.
pub(super) fn regular_files(dir: &OwnedFd) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(Errno::NOENT) => continue,
                Err(error) => return Err(error.into()),
            },
            kind => kind,
        };
        if kind == FileType::RegularFile {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The state of `name` in `dir`, without following a link; `None` if it is gone.
pub(super) fn version(dir: &OwnedFd, name: &str) -> std::io::Result<Option<(Version, Stat)>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some((Version::of(&stat), stat))),
        Err(Errno::NOENT) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Opens `name` in `dir` for reading: never through a link, never blocking on a FIFO, and only
/// a regular file with no other hard link (a link to a file the node may read but its writer
/// may not would otherwise put that file on the ledger). Says why not as a reason for `failed/`.
pub(super) fn open_regular(dir: &OwnedFd, name: &str) -> Result<(fs::File, Version), String> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|error| match error {
        Errno::LOOP => "it is a symbolic link; only regular files are recorded".to_string(),
        error => format!("cannot open it: {error}"),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|error| format!("cannot read it: {error}"))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err("it is not a regular file".into());
    }
    if stat.st_nlink != 1 {
        return Err(format!(
            "it has {} hard links; only a file with one name is recorded",
            stat.st_nlink
        ));
    }
    Ok((fs::File::from(fd), Version::of(&stat)))
}

/// Renames `from/name` to `to/target` (a link at either end is moved, never followed).
pub(super) fn rename(
    from: &OwnedFd,
    name: &str,
    to: &OwnedFd,
    target: &str,
) -> std::io::Result<()> {
    rustix::fs::renameat(from, name, to, target).map_err(Into::into)
}

/// `name`, or `name.N` if that is taken in `dir` (on disk, without following links, or by
/// `planned`).
pub(super) fn free_name(
    dir: &OwnedFd,
    name: &str,
    planned: &std::collections::HashSet<String>,
) -> std::io::Result<String> {
    let taken = |candidate: &str| -> std::io::Result<bool> {
        if planned.contains(candidate) {
            return Ok(true);
        }
        match rustix::fs::statat(dir, candidate, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(error) => Err(error.into()),
        }
    };
    let mut target = name.to_string();
    let mut n = 1u32;
    while taken(&target)? {
        target = format!("{name}.{n}");
        n += 1;
    }
    Ok(target)
}

/// Creates `dir/name` (which must not exist: a link or file put there by someone else makes
/// this fail) and writes `bytes` into it.
pub(super) fn create_new(
    dir: &OwnedFd,
    name: &str,
    bytes: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = fs::File::from(fd);
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Appends `text` to `dir/name`, creating it if missing, never through a link.
pub(super) fn append(dir: &OwnedFd, name: &str, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = fs::File::from(fd);
    if !FileType::from_raw_mode(rustix::fs::fstat(&file)?.st_mode).eq(&FileType::RegularFile) {
        return Err(std::io::Error::other(format!(
            "{name} is not a regular file"
        )));
    }
    file.write_all(text.as_bytes())
}

/// Opens `dir/name` for reading, never through a link: the file and what `fstat` says of it;
/// `None` if missing (or, with `links_missing`, a link).
fn open_read(
    dir: &OwnedFd,
    name: &str,
    links_missing: bool,
) -> std::io::Result<Option<(fs::File, Stat)>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) if links_missing => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    Ok(Some((fs::File::from(fd), stat)))
}

/// Reads `dir/name` whole if it is a regular file (never through a link); `None` if missing.
pub(super) fn read_text(dir: &OwnedFd, name: &str) -> std::io::Result<Option<String>> {
    let Some((file, stat)) = open_read(dir, name, false)? else {
        return Ok(None);
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::other(format!(
            "{name} is not a regular file"
        )));
    }
    std::io::read_to_string(file).map(Some)
}

/// Reads `dir/name` whole if it is a regular file owned by the node's user (checked on the
/// opened file, so it cannot be swapped between check and read); `None` if missing, a link or
/// another user's.
pub(super) fn read_own_text(dir: &OwnedFd, name: &str) -> std::io::Result<Option<String>> {
    match open_read(dir, name, true)? {
        Some((file, stat))
            if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
                && stat.st_uid == rustix::process::geteuid().as_raw() =>
        {
            std::io::read_to_string(file).map(Some)
        }
        _ => Ok(None),
    }
}

/// Removes `dir/name` if present (a link is removed, not followed).
pub(super) fn remove(dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

pub(super) fn sync(dir: &OwnedFd) -> std::io::Result<()> {
    rustix::fs::fsync(dir).map_err(Into::into)
}

/// A file name as a reason may show it: control characters escaped.
pub(super) fn escaped(name: &str) -> String {
    name.escape_debug().to_string()
}

/// Why a name cannot go into the journal or `done/ingested.tsv` (tab- and line-separated).
pub(super) fn unusable_name(name: &str) -> Option<String> {
    let bad = name.chars().find(|c| c.is_control())?;
    Some(format!(
        "its name contains the control character U+{:04X}; names with control characters are \
         not recorded (rename the file)",
        u32::from(bad)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_dir(path: &Path) -> OwnedFd {
        rustix::fs::open(path, DIRECTORY, Mode::empty()).expect("a directory")
    }

    #[test]
    fn only_a_regular_file_with_one_name_is_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("plain"), b"ok").expect("write");
        std::fs::write(dir.path().join("secret"), b"not yours").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("link"))
            .expect("symlink");
        std::fs::write(dir.path().join("twice"), b"two names").expect("write");
        std::fs::hard_link(dir.path().join("twice"), dir.path().join("twice-again"))
            .expect("hard link");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("fifo");
        let fd = open_dir(dir.path());
        assert!(open_regular(&fd, "plain").is_ok());
        let refused = |name: &str| open_regular(&fd, name).expect_err(name);
        assert!(refused("link").contains("symbolic link"));
        assert!(refused("twice").contains("2 hard links"));
        // Opened without blocking, then refused for what it is.
        assert!(refused("fifo").contains("not a regular file"));
        // The listing shows neither the link nor the FIFO.
        assert_eq!(
            regular_files(&fd).expect("list"),
            ["plain", "secret", "twice", "twice-again"]
        );
    }

    #[test]
    fn a_linked_or_foreign_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("spool");
        std::fs::create_dir(&watched).expect("mkdir");
        std::fs::create_dir(dir.path().join("elsewhere")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), watched.join("done"))
            .expect("symlink");
        match Dirs::open(&watched).expect("opens") {
            Err(Unsafe::Link { path }) => assert_eq!(path, watched.join("done")),
            other => panic!("a linked done/ was accepted: {other:?}"),
        }
        std::fs::remove_file(watched.join("done")).expect("unlink");
        assert!(Dirs::open(&watched).expect("opens").is_ok());
        assert!(watched.join("done").is_dir() && watched.join("failed").is_dir());

        // done/ and failed/ renamed into each other's places: recognised by their roles.
        std::fs::rename(watched.join("done"), watched.join("x")).expect("mv");
        std::fs::rename(watched.join("failed"), watched.join("done")).expect("mv");
        std::fs::rename(watched.join("x"), watched.join("failed")).expect("mv");
        match Dirs::open(&watched).expect("opens") {
            Err(Unsafe::Swapped { path, role }) => {
                assert_eq!((path, role.as_str()), (watched.join("done"), "failed"));
            }
            other => panic!("swapped directories were accepted: {other:?}"),
        }
        std::fs::rename(watched.join("done"), watched.join("x")).expect("mv");
        std::fs::rename(watched.join("failed"), watched.join("done")).expect("mv");
        std::fs::rename(watched.join("x"), watched.join("failed")).expect("mv");
        assert!(Dirs::open(&watched).expect("opens").is_ok());

        // A node directory others may write into is refused.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            watched.join("failed"),
            std::fs::Permissions::from_mode(0o777),
        )
        .expect("chmod");
        assert!(matches!(
            Dirs::open(&watched).expect("opens"),
            Err(Unsafe::Writable { mode: 0o777, .. })
        ));
    }

    #[test]
    fn a_name_with_a_control_character_is_unusable() {
        assert!(unusable_name("cycle-7.csv").is_none());
        assert!(unusable_name("naïve name.csv").is_none());
        for bad in ["a\tb", "a\nb", "a\rb", "a\u{7f}b", "a\u{85}b"] {
            assert!(unusable_name(bad).is_some(), "{bad:?}");
        }
    }
}
