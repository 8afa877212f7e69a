//! MNIST / Fashion-MNIST IDX files, plain and gzipped, written here byte for byte.

use std::io::Write;
use std::path::Path;

use metron_datasets::*;

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_set(root: &Path, gzipped: bool) {
    let pixels: Vec<u8> = (0..3 * 2 * 2).map(|v| v as u8).collect();
    let files = [
        ("train-images-idx3-ubyte", idx(&[3, 2, 2], &pixels)),
        ("train-labels-idx1-ubyte", idx(&[3], &[9, 0, 4])),
        ("t10k-images-idx3-ubyte", idx(&[1, 2, 2], &[1, 2, 3, 4])),
        ("t10k-labels-idx1-ubyte", idx(&[1], &[7])),
    ];
    for (name, bytes) in files {
        if gzipped {
            std::fs::write(root.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(root.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn reads_plain_and_gzipped_sets_identically() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_set(a.path(), false);
    write_set(b.path(), true);
    let (x, y) = (
        read_idx_dataset(a.path()).unwrap(),
        read_idx_dataset(b.path()).unwrap(),
    );
    assert_eq!(x, y);
    assert_eq!((x.train.count, x.train.height, x.train.width), (3, 2, 2));
    assert_eq!(x.train.labels, vec![9, 0, 4]);
    assert_eq!(&x.train.images[4..8], &[4, 5, 6, 7]);
    assert_eq!(x.test.labels, vec![7]);
}

#[test]
fn bad_idx_files_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write_set(r, false);
    let check = |name: &str, bytes: Vec<u8>, needle: &str| {
        std::fs::write(r.join(name), bytes).unwrap();
        let err = read_idx_dataset(r).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
    };
    check(
        "train-labels-idx1-ubyte",
        idx(&[2], &[1, 2]),
        "2 labels for the 3 images",
    );
    check(
        "train-labels-idx1-ubyte",
        idx(&[3], &[1, 2]),
        "need 3 data bytes, found 2",
    );
    check("train-labels-idx1-ubyte", vec![1, 2, 3, 4], "bad magic");
    check(
        "train-labels-idx1-ubyte",
        vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
        "not unsigned byte",
    );
    check(
        "train-labels-idx1-ubyte",
        vec![0, 0, 8, 3, 0, 0],
        "truncated header",
    );
    check(
        "train-labels-idx1-ubyte",
        vec![0x1f, 0x8b, 1, 2, 3],
        "corrupt gzip",
    );
    check(
        "train-labels-idx1-ubyte",
        idx(&[3, 1], &[1, 2, 3]),
        "expected 1 dimension",
    );
    write_set(r, false);
    std::fs::remove_file(r.join("t10k-images-idx3-ubyte")).unwrap();
    let err = read_idx_dataset(r).unwrap_err().to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte.gz") && err.contains("not found"),
        "{err}"
    );
    assert!(matches!(
        read_idx_dataset(&r.join("none")),
        Err(DatasetError::MissingRoot { .. })
    ));
}

#[test]
fn a_gzip_stream_that_inflates_past_the_cap_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb-idx1-ubyte.gz");
    // 1 MB of labels compresses to ~1 KB: past a 64 KB cap, never read whole.
    std::fs::write(&path, gz(&idx(&[1 << 20], &vec![0u8; 1 << 20]))).unwrap();
    let err = read_idx_capped(&path, 64 << 10).unwrap_err().to_string();
    assert!(
        err.contains("bomb-idx1-ubyte.gz") && err.contains("inflates to more than"),
        "{err}"
    );
    // Under a cap that fits, the same file reads.
    assert_eq!(read_idx_capped(&path, 2 << 20).unwrap().0, vec![1 << 20]);
}

#[test]
fn idx_sets_are_reachable_from_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fmnist");
    std::fs::create_dir_all(&data).unwrap();
    write_set(&data, true);
    let registry = dir.path().join("datasets.toml");
    std::fs::write(&registry, "[fm]\nreader = \"idx\"\nroot = \"fmnist\"\n").unwrap();
    let reg = Registry::load(&registry).unwrap();
    let set = reg.read_idx("fm", None).unwrap();
    assert_eq!((set.train.count, set.test.count), (3, 1));
    // Not a file-based dataset: read() says where to go instead of failing obscurely.
    assert!(
        reg.read("fm", None)
            .unwrap_err()
            .to_string()
            .contains("read_idx")
    );
}
