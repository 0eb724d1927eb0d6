//! `keys.json` on disk: its format, reading it, replacing it atomically, and
//! the lock that serialises writers.
//!
//! ```json
//! {
//!   "format": 1,
//!   "keys": [
//!     {"id": "k7dq2mzx4hfa", "name": "ops", "role": "admin", "portfolios": "all",
//!      "created_at": "2026-01-02T03:04:05Z", "revoked_at": null,
//!      "secret_sha256": "9f86d081…"}
//!   ]
//! }
//! ```
//!
//! Only the SHA-256 of each key is stored, never the key.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, KeyId, Result, Role, Scope};

/// The format this build reads and writes.
pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Checked on its own before the rest is parsed (see `parse`); here
    /// so that `deny_unknown_fields` accepts it.
    #[serde(rename = "format")]
    _format: u32,
    keys: Vec<StoredKey>,
}

/// One key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredKey {
    pub id: KeyId,
    pub name: Option<String>,
    pub role: Role,
    pub portfolios: Scope,
    /// The customer a `customer` key speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub secret_sha256: Digest,
}

/// A SHA-256 digest, stored as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digest(pub [u8; 32]);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest of a 256-bit secret gives nothing away, but there is no
        // reason to print it either.
        f.write_str("Digest(..)")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut hex = String::with_capacity(64);
        for b in self.0 {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("secret_sha256 must be 64 lowercase hex digits");
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
        }
        Ok(Digest(out))
    }
}

/// What identifies one version of the file. Writers replace the file by
/// rename, so every write gives a new inode even when the size and the
/// mtime (whose granularity may be coarse) happen to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
}

/// The file's stamp, or `None` when there is no file.
pub(crate) fn stamp(path: &Path) -> Result<Option<FileStamp>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(stamp_of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(unix)]
fn stamp_of(m: &fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
        device: m.dev(),
    }
}

#[cfg(not(unix))]
fn stamp_of(m: &fs::Metadata) -> FileStamp {
    FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: 0,
        device: 0,
    }
}

/// Reads the keys and the stamp of what was read. No file: no keys.
pub(crate) fn read(path: &Path) -> Result<(Option<FileStamp>, Vec<StoredKey>)> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((None, Vec::new())),
        Err(e) => return Err(read_err(e)),
    };
    // Stamp the open file, not the path, so a rename between the two cannot
    // pair the new stamp with the old contents.
    let meta = file.metadata().map_err(read_err)?;
    check_permissions(path, &meta)?;
    let bytes = io::read_to_string(file).map_err(read_err)?;
    let keys = parse(path, &bytes)?;
    Ok((Some(stamp_of(&meta)), keys))
}

fn parse(path: &Path, text: &str) -> Result<Vec<StoredKey>> {
    let corrupt = |source| Error::Corrupt {
        path: path.to_owned(),
        source,
    };
    // The format first, on its own, so that a newer file is reported as
    // newer rather than as having unknown fields.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let Format { format } = serde_json::from_str(text).map_err(corrupt)?;
    if format != FORMAT {
        return Err(Error::UnsupportedFormat {
            path: path.to_owned(),
            format,
            supported: FORMAT,
        });
    }
    let file: KeyFile = serde_json::from_str(text).map_err(corrupt)?;
    let mut seen = std::collections::HashSet::new();
    for key in &file.keys {
        if !seen.insert(key.id) {
            return Err(Error::DuplicateKeyId {
                path: path.to_owned(),
                id: key.id.to_string(),
            });
        }
    }
    Ok(file.keys)
}

/// A key file others can write would let them add an admin key: refuse it,
/// as ssh does. Readable by others is tolerated (it holds only digests of
/// 256-bit secrets), though this crate always creates it 0600.
#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: &fs::Metadata) -> Result<()> {
    Ok(())
}

/// Replaces the file with `keys`: a new file (0600) in the same directory,
/// written and fsynced, renamed over the old one, then the directory
/// fsynced so the rename itself survives a crash. Readers see the old file
/// or the new one, never a torn one. Call with the lock held.
pub(crate) fn write(path: &Path, keys: &[StoredKey]) -> Result<()> {
    /// [`KeyFile`] by reference, for writing.
    #[derive(Serialize)]
    struct KeyFileRef<'a> {
        format: u32,
        keys: &'a [StoredKey],
    }
    let dir = parent(path);
    create_dir(dir)?;
    let mut text = serde_json::to_string_pretty(&KeyFileRef {
        format: FORMAT,
        keys,
    })
    .map_err(|e| write_err(path)(io::Error::other(e)))?;
    text.push('\n');
    let tmp = tmp_path(path);
    // A temp file left by a crash may have any mode; start afresh so the
    // mode below applies.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(&tmp)(e)),
    }
    let mut file = private_file(&tmp, true).map_err(write_err(&tmp))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(write_err(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Write { path, source }
}

/// Holds the writers' lock on `keys.json.lock` until dropped. Readers take
/// no lock: the file they read is always whole (see [`write`]).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

/// Waits for the lock. Two `ultracore keys` commands at once, or one beside
/// a server creating its first admin key, would otherwise each read the
/// file, change it and write it back, and the second write would undo the
/// first (a lost revocation among them).
pub(crate) fn lock(path: &Path) -> Result<WriteLock> {
    let dir = parent(path);
    create_dir(dir)?;
    let lock_path = lock_path(path);
    let file = private_file(&lock_path, false).map_err(write_err(&lock_path))?;
    file.lock().map_err(write_err(&lock_path))?;
    Ok(WriteLock { _file: file })
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    path.with_file_name(name)
}

/// Creates the directory, 0700, when it does not exist; an existing one is
/// left as it is (it is the data directory, shared with the log).
fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Opens a file for writing, created 0600 (the umask can only narrow it).
fn private_file(path: &Path, create_new: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn key(id: &str) -> Result<StoredKey, Box<dyn std::error::Error>> {
        Ok(StoredKey {
            id: KeyId::from_text(id).ok_or("bad id")?,
            name: Some("ops".into()),
            role: Role::Admin,
            portfolios: Scope::All,
            customer: None,
            created_at: "2026-01-02T03:04:05Z".parse()?,
            revoked_at: None,
            secret_sha256: Digest([0xab; 32]),
        })
    }

    #[test]
    fn round_trips_and_stamps_change_on_every_write() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/keys.json");
        assert!(read(&path)?.1.is_empty(), "no file, no keys");
        write(&path, &[key("aaaaaaaaaaaa")?])?;
        let (s1, keys) = read(&path)?;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret_sha256, Digest([0xab; 32]));
        // Same size, same second: the inode still tells them apart.
        write(&path, &[key("bbbbbbbbbbbb")?])?;
        let (s2, _) = read(&path)?;
        assert_ne!(s1, s2);
        assert_eq!(s2, stamp(&path)?);
        assert!(!tmp_path(&path).exists());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_and_new_directories_too() -> TestResult {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("new/keys.json");
        write(&path, &[])?;
        let mode =
            |p: &Path| -> io::Result<u32> { Ok(fs::metadata(p)?.permissions().mode() & 0o777) };
        assert_eq!(mode(&path)?, 0o600);
        assert_eq!(mode(&dir.path().join("new"))?, 0o700);
        // Writable by others: refused, with the fix in the message.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
        let e = read(&path).unwrap_err();
        assert!(
            matches!(e, Error::InsecurePermissions { mode: 0o666, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        // A rewrite replaces the file, and with it the mode.
        write(&path, &[])?;
        assert_eq!(mode(&path)?, 0o600);
        Ok(())
    }

    #[test]
    fn rejects_other_formats_duplicates_and_bad_digests() -> TestResult {
        let p = Path::new("keys.json");
        assert!(matches!(
            parse(p, r#"{"format": 2, "keys": [], "new_field": 1}"#),
            Err(Error::UnsupportedFormat { format: 2, .. })
        ));
        let k = serde_json::to_string(&key("aaaaaaaaaaaa")?)?;
        let twice = format!(r#"{{"format": 1, "keys": [{k}, {k}]}}"#);
        assert!(matches!(
            parse(p, &twice),
            Err(Error::DuplicateKeyId { .. })
        ));
        let short = k.replace(&"ab".repeat(32), "abcd");
        let e = parse(p, &format!(r#"{{"format": 1, "keys": [{short}]}}"#)).unwrap_err();
        assert!(e.to_string().contains("64 lowercase hex"), "{e}");
        assert!(matches!(
            parse(p, "{\"format\": 1, \"keys\": ["),
            Err(Error::Corrupt { .. })
        ));
        Ok(())
    }
}
