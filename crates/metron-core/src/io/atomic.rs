//! Crash-safe file replacement shared by every writer in metron.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Distinguishes temp files of concurrent writers inside one process; the pid distinguishes
/// processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers only ever see the old content or the complete new
/// content: the bytes go to a temporary file in the same directory (a rename is only atomic
/// within one file system), which is fsynced and then renamed over `path`.
///
/// The parent directory must exist. On failure the temporary file is removed and `path` is left
/// untouched.
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let file_name = path.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: cannot write a file here: the path has no file name",
            path.display()
        ))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };

    let (tmp_path, mut file) =
        create_temp(&dir, &file_name.to_string_lossy()).map_err(|e| Error::io(path, e))?;

    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    // Windows cannot rename a file that is still open.
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp_path, path)) {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp_path);
        return Err(Error::io(path, e));
    }

    sync_dir(&dir);
    Ok(())
}

/// Creates a fresh temp file next to the target; `create_new` guarantees we never truncate a file
/// some other writer is still filling.
fn create_temp(dir: &Path, file_name: &str) -> std::io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Persists the rename itself. Some file systems refuse to fsync a directory; the data is already
/// safe on disk by then, so such a refusal is not worth failing the write for.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no_such_dir").join("out.bin");
        match atomic_write(&path, b"x") {
            Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Io error, got {other:?}"),
        }
    }
}
