//! The in-memory embedding matrix and the format-dispatching reader.

use std::path::Path;

use ndarray::{Array2, ArrayD, Ix2};

use super::npy::{EXPECT_FLOAT, NpyDtype, RawNpy};
use super::safetensors_io::read_safetensors_tensor;
use crate::{Error, Result};

/// Embeddings as read from disk: kept in their own precision so f64 data is compared in f64.
///
/// Rows are items, columns are embedding dimensions; arrays are always in standard (C) layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Embeddings {
    /// Single-precision embeddings (`<f4` / `F32`).
    F32(Array2<f32>),
    /// Double-precision embeddings (`<f8` / `F64`).
    F64(Array2<f64>),
}

impl Embeddings {
    /// Number of embeddings (rows).
    pub fn nrows(&self) -> usize {
        match self {
            Embeddings::F32(a) => a.nrows(),
            Embeddings::F64(a) => a.nrows(),
        }
    }

    /// Embedding dimension (columns).
    pub fn ncols(&self) -> usize {
        match self {
            Embeddings::F32(a) => a.ncols(),
            Embeddings::F64(a) => a.ncols(),
        }
    }

    /// `"f32"` or `"f64"`, for messages and reports.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Embeddings::F32(_) => "f32",
            Embeddings::F64(_) => "f64",
        }
    }

    /// A single-precision copy, for consumers (such as GPU backends) that only work in f32.
    pub fn to_f32(&self) -> Array2<f32> {
        match self {
            Embeddings::F32(a) => a.clone(),
            Embeddings::F64(a) => a.mapv(|x| x as f32),
        }
    }

    /// A double-precision copy (exact for f32 input), to compare an f32 set with an f64 one.
    pub fn to_f64(&self) -> Array2<f64> {
        match self {
            Embeddings::F32(a) => a.mapv(f64::from),
            Embeddings::F64(a) => a.clone(),
        }
    }

    /// Fails with [`Error::NonFinite`] at the first NaN or infinity in row-major order;
    /// `context` (typically the file name) starts the message.
    pub fn check_finite(&self, context: &str) -> Result<()> {
        let found = match self {
            Embeddings::F32(a) => a
                .indexed_iter()
                .find(|(_, v)| !v.is_finite())
                .map(|(rc, &v)| (rc, f64::from(v))),
            Embeddings::F64(a) => a
                .indexed_iter()
                .find(|(_, v)| !v.is_finite())
                .map(|(rc, &v)| (rc, v)),
        };
        match found {
            None => Ok(()),
            Some(((row, col), value)) => Err(Error::NonFinite {
                context: context.to_string(),
                row,
                col,
                value,
            }),
        }
    }
}

impl From<Array2<f32>> for Embeddings {
    fn from(a: Array2<f32>) -> Self {
        Embeddings::F32(a)
    }
}

impl From<Array2<f64>> for Embeddings {
    fn from(a: Array2<f64>) -> Self {
        Embeddings::F64(a)
    }
}

/// Reads an embedding matrix from `.npy` (`<f4` or `<f8`, rank 2, C or Fortran order) or
/// `.safetensors` (an `F32`/`F64` rank-2 tensor: the only tensor in the file, else the one
/// named `"embeddings"`). The format is chosen by the file extension.
pub fn read_embeddings(path: impl AsRef<Path>) -> Result<Embeddings> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("npy") => read_npy_embeddings(path),
        Some("safetensors") => read_safetensors_tensor(path, None),
        _ => Err(Error::format(
            path,
            "unrecognised embeddings file: expected a .npy or .safetensors extension",
        )),
    }
}

fn read_npy_embeddings(path: &Path) -> Result<Embeddings> {
    let raw = RawNpy::read(path, EXPECT_FLOAT)?;
    // Checked before decoding so a wrong file fails fast instead of after a large conversion.
    if raw.shape.len() != 2 {
        return Err(rank2_error(path, raw.shape));
    }
    match raw.dtype {
        NpyDtype::F4 => Ok(Embeddings::F32(into_2d(path, raw.into_f32()?)?)),
        NpyDtype::F8 => Ok(Embeddings::F64(into_2d(path, raw.into_f64()?)?)),
        _ => Err(raw.dtype_error(EXPECT_FLOAT)),
    }
}

fn into_2d<T>(path: &Path, a: ArrayD<T>) -> Result<Array2<T>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| rank2_error(path, shape))
}

/// The error for an embedding array that is not a matrix.
pub(crate) fn rank2_error(path: &Path, got: Vec<usize>) -> Error {
    Error::Shape {
        context: format!("embeddings in {}", path.display()),
        expected: "[N, D] (rank 2)".into(),
        got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::npy::npy_bytes;
    use crate::io::write_npy;
    use ndarray::{Array3, array};

    #[test]
    fn npy_round_trip_keeps_precision() {
        let dir = tempfile::tempdir().unwrap();
        let f64s = array![[1.0f64 + 1e-12, 2.0], [3.0, -4.5], [0.1, 0.2]];
        let p = dir.path().join("e64.npy");
        write_npy(&p, &f64s).unwrap();
        let e = read_embeddings(&p).unwrap();
        assert_eq!(e, Embeddings::F64(f64s.clone()));
        assert_eq!((e.nrows(), e.ncols(), e.dtype_name()), (3, 2, "f64"));
        assert_eq!(e.to_f32(), f64s.mapv(|x| x as f32));

        let f32s = f64s.mapv(|x| x as f32);
        let p = dir.path().join("e32.NPY");
        write_npy(&p, &f32s).unwrap();
        let e = read_embeddings(&p).unwrap();
        assert_eq!(e.dtype_name(), "f32");
        assert_eq!(e.to_f32(), f32s);

        let empty = Array2::<f32>::zeros((0, 4));
        let p = dir.path().join("empty.npy");
        write_npy(&p, &empty).unwrap();
        let e = read_embeddings(&p).unwrap();
        assert_eq!((e.nrows(), e.ncols()), (0, 4));
    }

    #[test]
    fn fortran_order_embeddings_are_transposed_into_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let bytes = npy_bytes(
            1,
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &data,
        );
        let p = dir.path().join("f.npy");
        std::fs::write(&p, bytes).unwrap();
        let e = read_embeddings(&p).unwrap();
        assert_eq!(e, Embeddings::F32(array![[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]));
    }

    #[test]
    fn wrong_rank_dtype_or_extension_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r3.npy");
        write_npy(&p, &Array3::<f32>::zeros((2, 3, 4))).unwrap();
        match read_embeddings(&p) {
            Err(Error::Shape { got, .. }) => assert_eq!(got, vec![2, 3, 4]),
            other => panic!("expected Shape error, got {other:?}"),
        }

        let p = dir.path().join("r1.npy");
        write_npy(&p, &array![1.0f64, 2.0]).unwrap();
        assert!(matches!(read_embeddings(&p), Err(Error::Shape { .. })));

        let p = dir.path().join("int.npy");
        write_npy(&p, &array![[1i64, 2]]).unwrap();
        assert!(matches!(read_embeddings(&p), Err(Error::Dtype { dtype, .. }) if dtype == "<i8"));

        let p = dir.path().join("c8.npy");
        let bytes = npy_bytes(
            1,
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1), }",
            &[0; 8],
        );
        std::fs::write(&p, bytes).unwrap();
        assert!(
            matches!(read_embeddings(&p), Err(Error::Dtype { path, dtype, .. }) if dtype == "<c8" && path == p)
        );

        let p = dir.path().join("emb.txt");
        std::fs::write(&p, "1 2 3\n").unwrap();
        assert!(matches!(read_embeddings(&p), Err(Error::Format { .. })));
    }

    #[test]
    fn check_finite_reports_the_first_bad_cell() {
        let mut a = Array2::<f64>::zeros((4, 3));
        Embeddings::F64(a.clone()).check_finite("ok").unwrap();
        a[[2, 1]] = f64::NAN;
        a[[3, 0]] = f64::INFINITY;
        match Embeddings::F64(a.clone()).check_finite("emb.npy") {
            Err(Error::NonFinite {
                context,
                row,
                col,
                value,
            }) => {
                assert_eq!((context.as_str(), row, col), ("emb.npy", 2, 1));
                assert!(value.is_nan());
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let mut b = Array2::<f32>::zeros((2, 5));
        b[[1, 4]] = f32::NEG_INFINITY;
        match Embeddings::F32(b).check_finite("x") {
            Err(Error::NonFinite {
                row, col, value, ..
            }) => {
                assert_eq!((row, col, value), (1, 4, f64::NEG_INFINITY));
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_oracle_embeddings() {
        let e = read_embeddings(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/oracles/inputs/s64_norm_emb.npy"
        ))
        .unwrap();
        assert_eq!((e.nrows(), e.ncols(), e.dtype_name()), (64, 16, "f64"));
        e.check_finite("s64_norm_emb.npy").unwrap();
    }
}
