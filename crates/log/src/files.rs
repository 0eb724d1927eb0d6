//! Data files only their owner can read: every file UltraCore creates in a
//! data directory is `0600` and every directory `0700`, whatever the umask.
//! Events carry portfolios, trades and client data, and the default umask
//! would leave them readable by every user of the machine.
//!
//! Only what UltraCore creates gets these modes: files and directories that
//! already exist keep theirs, so an operator's choice (say, a group that
//! may read backups) stands.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the files UltraCore creates.
pub const FILE_MODE: u32 = 0o600;
/// The mode of the directories UltraCore creates.
pub const DIR_MODE: u32 = 0o700;

/// [`OpenOptions`] whose `create` makes a [`FILE_MODE`] file.
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates `dir` and its missing parents, each [`DIR_MODE`].
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Writes `data` to `path`, creating it [`FILE_MODE`] or truncating it.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?
        .write_all(data)
}

/// Creates `path` as an empty [`FILE_MODE`] file unless it exists. For
/// SQLite, which would create its database with the umask's mode: it takes
/// an empty file as a new database, and gives the `-wal` and `-shm` files
/// it creates beside it the database file's mode.
pub fn create_if_missing(path: &Path) -> std::io::Result<()> {
    match open_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `root` and everything under it whose mode is not [`DIR_MODE`] (for a
/// directory) or [`FILE_MODE`] (for anything else), with the mode found:
/// what a test or a health check of a data directory reports. Symbolic
/// links are not followed.
pub fn not_owner_only(root: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
        let wanted = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
        if mode != wanted && !meta.file_type().is_symlink() {
            out.push((path, mode));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mode(path: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn creates_owner_only_files_and_directories() -> TestResult {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("a/b");
        create_dir_all(&dir)?;
        assert_eq!(mode(&root.path().join("a"))?, DIR_MODE);
        assert_eq!(mode(&dir)?, DIR_MODE);
        write(&dir.join("f"), b"x")?;
        assert_eq!(mode(&dir.join("f"))?, FILE_MODE);
        create_if_missing(&dir.join("db"))?;
        assert_eq!(mode(&dir.join("db"))?, FILE_MODE);
        // An existing file keeps its mode and its bytes.
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o640))?;
        create_if_missing(&dir.join("f"))?;
        assert_eq!(mode(&dir.join("f"))?, 0o640);
        assert_eq!(std::fs::read(dir.join("f"))?, b"x");
        assert_eq!(
            not_owner_only(&root.path().join("a"))?,
            vec![(dir.join("f"), 0o640)]
        );
        Ok(())
    }
}
