//! Class labels: integer `.npy` arrays or text files with one label per line.

use std::path::Path;

use super::npy::{EXPECT_INT, RawNpy};
use crate::{Error, Result};

/// Integer class labels, one per embedding row.
pub type Labels = Vec<i64>;

/// Reads class labels.
///
/// A `.npy` file may hold any little-endian integer dtype (`i1`..`i8`, `u1`..`u8`) with shape
/// `[N]` or `[N, 1]`; u64 values beyond `i64::MAX` are an [`Error::Format`]. Any other
/// extension is read as UTF-8 text with one integer per line (surrounding whitespace ignored,
/// blank lines allowed only at the end); a bad line is an [`Error::Line`] with its 1-based
/// number.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Labels> {
    let path = path.as_ref();
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        read_npy_labels(path)
    } else {
        read_text_labels(path)
    }
}

fn read_npy_labels(path: &Path) -> Result<Labels> {
    let raw = RawNpy::read(path, EXPECT_INT)?;
    // Checked before decoding so a wrong file fails fast instead of after a large conversion.
    match raw.shape.as_slice() {
        [_] | [_, 1] => {}
        other => {
            return Err(Error::Shape {
                context: format!("labels in {}", path.display()),
                expected: "[N] or [N, 1]".into(),
                got: other.to_vec(),
            });
        }
    }
    let (values, _) = raw.into_i64()?.into_raw_vec_and_offset();
    Ok(values)
}

fn read_text_labels(path: &Path) -> Result<Labels> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Editors on Windows like to prepend a byte-order mark; it is not part of the first label.
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = std::str::from_utf8(body).map_err(|e| {
        let valid = &body[..e.valid_up_to()];
        Error::Line {
            path: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            what: "not valid UTF-8".into(),
        }
    })?;

    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let used = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |last| last + 1);
    lines[..used]
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.parse::<i64>().map_err(|_| Error::Line {
                path: path.to_path_buf(),
                line: i + 1,
                what: if line.is_empty() {
                    "empty line; expected an integer label".into()
                } else {
                    format!("expected an integer label, found {line:?}")
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::npy_bytes;
    use crate::io::write_npy;
    use ndarray::{Array2, array};
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn every_integer_dtype_reads_as_labels() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, usize); 8] = [
            ("|i1", 1),
            ("|u1", 1),
            ("<i2", 2),
            ("<u2", 2),
            ("<i4", 4),
            ("<u4", 4),
            ("<i8", 8),
            ("<u8", 8),
        ];
        let values = [0u8, 3, 7, 1];
        for (descr, size) in cases {
            // Small non-negative values read the same in every integer type.
            let data: Vec<u8> = values
                .iter()
                .flat_map(|&v| {
                    let mut b = vec![0u8; size];
                    b[0] = v;
                    b
                })
                .collect();
            for shape in ["(4,)", "(4, 1)"] {
                let dict =
                    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
                let p = write(dir.path(), "l.npy", &npy_bytes(1, &dict, &data));
                assert_eq!(
                    read_labels(&p).unwrap(),
                    vec![0, 3, 7, 1],
                    "{descr} {shape}"
                );
            }
        }
        let dict = "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }";
        let p = write(dir.path(), "neg.npy", &npy_bytes(1, dict, &[0xff, 0x80]));
        assert_eq!(read_labels(&p).unwrap(), vec![-1, -128]);
    }

    #[test]
    fn written_labels_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.npy");
        write_npy(&p, &array![5i64, -2, 9, i64::MAX]).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![5, -2, 9, i64::MAX]);
        write_npy(&p, &ndarray::Array1::<i32>::zeros(0)).unwrap();
        assert_eq!(read_labels(&p).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn bad_npy_labels_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wide.npy");
        write_npy(&p, &Array2::<i64>::zeros((3, 2))).unwrap();
        assert!(matches!(read_labels(&p), Err(Error::Shape { got, .. }) if got == vec![3, 2]));

        let p = dir.path().join("float.npy");
        write_npy(&p, &array![1.0f32, 2.0]).unwrap();
        assert!(matches!(read_labels(&p), Err(Error::Dtype { dtype, .. }) if dtype == "<f4"));

        let dict = "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }";
        let p = write(
            dir.path(),
            "huge.npy",
            &npy_bytes(1, dict, &u64::MAX.to_le_bytes()),
        );
        assert!(matches!(read_labels(&p), Err(Error::Format { path, .. }) if path == p));

        let dict = "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }";
        let p = write(dir.path(), "big.npy", &npy_bytes(1, dict, &[0, 0, 0, 1]));
        assert!(matches!(read_labels(&p), Err(Error::Dtype { .. })));
    }

    #[test]
    fn text_labels_parse_with_whitespace_and_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "l.txt", b"\xef\xbb\xbf3\n  -1 \r\n+7\n0\n\n");
        assert_eq!(read_labels(&p).unwrap(), vec![3, -1, 7, 0]);
        let p = write(dir.path(), "l2", b"42");
        assert_eq!(read_labels(&p).unwrap(), vec![42]);
        let p = write(dir.path(), "empty.txt", b"");
        assert_eq!(read_labels(&p).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn bad_text_lines_report_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], usize); 5] = [
            (b"1\n2\nthree\n4\n", 3),
            (b"1\n\n2\n", 2),
            (b"1\n2.5\n", 2),
            (b"99999999999999999999\n", 1),
            (b"1\n2\n\xff\n", 3),
        ];
        for (content, line) in cases {
            let p = write(dir.path(), "bad.txt", content);
            match read_labels(&p) {
                Err(Error::Line { path, line: l, .. }) => {
                    assert_eq!(path, p);
                    assert_eq!(l, line, "{:?}", String::from_utf8_lossy(content));
                }
                other => panic!("expected Line error, got {other:?}"),
            }
        }
        let missing = dir.path().join("missing.txt");
        assert!(matches!(read_labels(&missing), Err(Error::Io { .. })));
    }

    #[test]
    fn oracle_labels_are_eight_contiguous_classes_of_eight() {
        let labels = read_labels(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/oracles/inputs/s64_norm_labels.npy"
        ))
        .unwrap();
        assert_eq!(labels.len(), 64);
        for (i, &l) in labels.iter().enumerate() {
            assert_eq!(l, labels[8 * (i / 8)], "label {i}");
        }
        let mut distinct = labels.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);
    }
}
