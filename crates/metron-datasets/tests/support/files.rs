//! Writing miniature dataset layouts in temp dirs.

use std::path::Path;

/// Writes `content` to `root/rel`, creating the folders on the way.
pub fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}
