//! Backup and restore of a data dir: one tar file (ustar, written and read with the `tar`
//! crate; `tar -tvf` lists it)
//! holding a consistent copy of the store, taken with the store's online backup while the
//! server runs, and the files the answers depend on:
//!
//! - `reportroot.sqlite3`: every tenant as of one committed batch boundary;
//! - `keys/ring.json`: the key ring (`auth::keys`): the token and link keys (tokens and links
//!   minted before stay valid against the restored dir) and the digest secret of the
//!   concealed names (a restored dir without it would conceal every user under other
//!   digests);
//! - `keys/link-secret`, `keys/signing-key.pem`: the keys of a data dir from before key
//!   rings, if it still has them (the ring was made from them);
//! - `apps.json` (app registrations, hashed secrets), `public-url`, and `tls/` (the
//!   self-signed CA and leaf, when present).
//!
//! Not included, because they are caches rebuilt from the store: `snapshots/` and `spool/`.
//! The file holds the signing keys: keep it as secret as the data dir.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::store::{SqliteStore, Store, StoreError};

/// The store's file inside the data dir and the archive.
pub const DB_FILE: &str = "reportroot.sqlite3";
/// The other files of a data dir a backup carries (if present), besides everything in `tls/`.
pub const EXTRA_FILES: [&str; 5] = [
    "keys/ring.json",
    "keys/link-secret",
    "keys/signing-key.pem",
    "apps.json",
    "public-url",
];

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
    #[error("{0} is not a reportroot backup: {1}")]
    BadArchive(String, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LifecycleError + '_ {
    move |source| LifecycleError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a backup or restore wrote: archive member names and their sizes.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: Vec<(String, u64)>,
}

/// Writes a backup of the data dir `data` to the file `out` (atomically: a temporary file
/// beside it, fsynced, then renamed). Safe while a server runs on `data` and ingests.
pub fn backup(data: &Path, out: &Path) -> Result<Summary, LifecycleError> {
    if !data.join(DB_FILE).is_file() {
        return Err(LifecycleError::Refused(format!(
            "{} holds no {DB_FILE}: not a reportroot data dir",
            data.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let scratch = tempfile::tempdir_in(&parent).map_err(io(&parent))?;
    let db_copy = scratch.path().join(DB_FILE);
    SqliteStore::open(data)?.backup_to(&db_copy)?;

    let mut members: Vec<(String, PathBuf)> = vec![(DB_FILE.to_string(), db_copy)];
    for name in EXTRA_FILES {
        let p = data.join(name);
        if p.is_file() {
            members.push((name.to_string(), p));
        }
    }
    let tls = data.join("tls");
    if let Ok(entries) = std::fs::read_dir(&tls) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            members.push((format!("tls/{n}"), tls.join(&n)));
        }
    }

    let tmp = scratch.path().join("backup.tar");
    let mut summary = Summary::default();
    {
        let f = File::create(&tmp).map_err(io(&tmp))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(f));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (name, path) in &members {
            let src = File::open(path).map_err(io(path))?;
            let len = src.metadata().map_err(io(path))?.len();
            let mut h = tar::Header::new_ustar();
            h.set_size(len);
            h.set_mode(0o600);
            h.set_mtime(now);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, src.take(len))
                .map_err(io(&tmp))?;
            summary.files.push((name.clone(), len));
        }
        let w = tar.into_inner().map_err(io(&tmp))?;
        let f = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(summary)
}

/// Restores the backup `from` into the data dir `data`, which must not exist or be empty.
pub fn restore(from: &Path, data: &Path) -> Result<Summary, LifecycleError> {
    if let Ok(mut entries) = std::fs::read_dir(data)
        && entries.next().is_some()
    {
        return Err(LifecycleError::Refused(format!(
            "{} is not empty: restore only into a new or empty data dir",
            data.display()
        )));
    }
    let existed = data.exists();
    let restored = extract(from, data);
    if restored.is_err() {
        // The dir was new or empty: leave it as it was, not half restored.
        let _ = std::fs::remove_dir_all(data);
        if existed {
            let _ = std::fs::create_dir(data);
        }
    }
    restored
}

fn extract(from: &Path, data: &Path) -> Result<Summary, LifecycleError> {
    let bad = |why: &str| LifecycleError::BadArchive(from.display().to_string(), why.into());
    let file = File::open(from).map_err(io(from))?;
    std::fs::create_dir_all(data).map_err(io(data))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut summary = Summary::default();
    let entries = archive
        .entries()
        .map_err(|e| bad(&format!("it is not a tar file ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(&format!("a member is unreadable ({e})")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad("a member is not a regular file"));
        }
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .ok_or_else(|| bad("a member name is not UTF-8"))?;
        if !allowed(&name) {
            return Err(bad(&format!("unexpected member '{name}'")));
        }
        let size = entry.size();
        let dest = data.join(&name);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut f = File::create(&dest).map_err(io(&dest))?;
        #[cfg(unix)]
        if name.starts_with("keys/") || name.ends_with("key.pem") || name == "apps.json" {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io(&dest))?;
        }
        let copied = std::io::copy(&mut entry, &mut f)
            .map_err(|e| bad(&format!("a member is cut short ({e})")))?;
        if copied != size {
            return Err(bad("a member is cut short"));
        }
        f.sync_all().map_err(io(&dest))?;
        summary.files.push((name, size));
    }
    if !summary.files.iter().any(|(n, _)| n == DB_FILE) {
        return Err(bad(&format!("it holds no {DB_FILE}")));
    }
    // Opens the store once: checks it and puts it back in WAL mode.
    let store = SqliteStore::open(data)?;
    store.tenants()?;
    Ok(summary)
}

/// Only the names a backup writes: relative, no `..`, and of the known set.
fn allowed(name: &str) -> bool {
    let p = Path::new(name);
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    let known = name == DB_FILE
        || EXTRA_FILES.contains(&name)
        || name
            .strip_prefix("tls/")
            .is_some_and(|n| !n.is_empty() && !n.contains('/'));
    plain && known
}

/// The data dir's owner lock (`DATA/lock`, an exclusive advisory lock held for the life of
/// the process): one process owns a data dir, because the server keeps its tenants in
/// memory and would serve stale reports if another process wrote the store beside it.
/// `serve`, `ingest` and `tenants delete|erase` take it; `backup`, `restore` (into an empty dir), `tenants
/// list|show` and `audit` only read the store and do not. The lock goes with the process,
/// however it ends (the kernel releases it), so a crash never leaves a dir locked.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(data: &Path, what: &str) -> Result<DataDirLock, LifecycleError> {
        std::fs::create_dir_all(data).map_err(io(data))?;
        let path = data.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LifecycleError::Refused(format!(
                    "{} is in use by another reportroot process ({}); stop it first, or use the HTTP API of the running server",
                    data.display(),
                    holder.trim()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        // Who holds it, for the message above (informative only).
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = write!(file, "pid {}: {what}", std::process::id());
        Ok(DataDirLock { _file: file })
    }
}
