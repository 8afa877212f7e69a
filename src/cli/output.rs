//! Where the subcommands write: nothing the user made is replaced without `--force`, and a set
//! of files that belong together (`metron embed`'s embeddings, labels and paths) is replaced
//! as a whole.

use std::path::{Path, PathBuf};

use super::CliError;

fn write_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses an existing `path` unless `force`.
pub(crate) fn refuse_existing_file(path: &Path, force: bool) -> Result<(), CliError> {
    if !force && path.exists() {
        return Err(CliError::Usage(format!(
            "{} exists: pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses `dir` when it holds any of `files`, unless `force`.
pub(crate) fn refuse_existing_files(
    dir: &Path,
    files: &[&str],
    force: bool,
) -> Result<(), CliError> {
    files
        .iter()
        .try_for_each(|f| refuse_existing_file(&dir.join(f), force))
}

/// [`refuse_existing_files`], then creates `dir`.
pub(crate) fn prepare_dir(dir: &Path, files: &[&str], force: bool) -> Result<(), CliError> {
    refuse_existing_files(dir, files, force)?;
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))
}

/// A sibling of `dir` named `<dir>.<what>-<pid>`, on the same file system so that renames
/// between them are atomic.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    dir.with_file_name(format!("{name}.{what}-{}", std::process::id()))
}

/// Writes the files `names` into `dir` with `write(folder)` so that a crash leaves either the
/// old set or the new one, never a mix: the set is written into a staging folder beside `dir`
/// and swapped in by renames. An existing set is replaced only with `force`. When `dir` holds
/// files of the user's own as well, the set is written into it file by file (each file
/// atomically): their folder is never moved.
pub(crate) fn write_file_set(
    dir: &Path,
    names: &[&str],
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let existing: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    let ours = |n: &String| names.contains(&n.as_str());
    if let Some(first) = existing.iter().find(|n| ours(n))
        && !force
    {
        return Err(CliError::Usage(format!(
            "{} exists: pass --force to replace the set ({})",
            dir.join(first).display(),
            names.join(", ")
        )));
    }
    if existing.iter().any(|n| !ours(n)) {
        std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
        return write(dir);
    }
    let staging = sibling(dir, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| write_error(&staging, e))?;
    if let Err(e) = write(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if existing.is_empty() {
        // An empty (or missing) folder: one rename puts the whole set in place.
        let _ = std::fs::remove_dir(dir);
        return std::fs::rename(&staging, dir).map_err(|e| write_error(dir, e));
    }
    // Old set aside, new set in, old set gone. Between the two renames the old set is complete
    // in `<dir>.previous-<pid>`.
    let previous = sibling(dir, "previous");
    std::fs::rename(dir, &previous).map_err(|e| write_error(dir, e))?;
    if let Err(e) = std::fs::rename(&staging, dir) {
        let _ = std::fs::rename(&previous, dir);
        return Err(write_error(dir, e));
    }
    std::fs::remove_dir_all(&previous).map_err(|e| write_error(&previous, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(dir: &Path, tag: &str) -> Result<(), CliError> {
        write_file_set(dir, &["a.txt", "b.txt"], true, |d| {
            for f in ["a.txt", "b.txt"] {
                std::fs::write(d.join(f), tag).map_err(|e| write_error(d, e))?;
            }
            Ok(())
        })
    }

    #[test]
    fn a_set_is_refused_without_force_and_replaced_whole_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        write_set(&dir, "old").unwrap();
        let refused = write_file_set(&dir, &["a.txt", "b.txt"], false, |_| Ok(()));
        assert!(refused.unwrap_err().to_string().contains("--force"));
        // A writer that fails half-way leaves the old set untouched.
        let failed = write_file_set(&dir, &["a.txt", "b.txt"], true, |d| {
            std::fs::write(d.join("a.txt"), "new").unwrap();
            Err(CliError::Usage("disk full".into()))
        });
        assert!(failed.is_err());
        for f in ["a.txt", "b.txt"] {
            assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), "old");
        }
        write_set(&dir, "new").unwrap();
        for f in ["a.txt", "b.txt"] {
            assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), "new");
        }
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_folder_with_the_users_own_files_is_written_into_not_moved() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mine");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        write_set(&dir, "new").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_to_string(dir.join("a.txt")).unwrap(), "new");
    }
}
