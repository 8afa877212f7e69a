//! Embedding matrices in `.safetensors` files.

use std::path::Path;

use ndarray::Array2;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::atomic::atomic_write;
use super::embeddings::{Embeddings, rank2_error};
use crate::{Error, Result};

/// The tensor picked when a file holds several and the caller names none.
const DEFAULT_NAME: &str = "embeddings";

/// Reads one `F32`/`F64` rank-2 tensor from a `.safetensors` file.
///
/// With `name`, that tensor is read. Without, the file's only tensor is read, or else the one
/// named `"embeddings"`; otherwise the [`Error::Format`] lists the names found.
pub fn read_safetensors_tensor(path: impl AsRef<Path>, name: Option<&str>) -> Result<Embeddings> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;

    let names = || {
        let mut names = file.names();
        names.sort_unstable();
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match (name, file.names().as_slice()) {
        (Some(n), _) => n,
        (None, [only]) => only,
        (None, []) => return Err(Error::format(path, "the file holds no tensors")),
        (None, _) => DEFAULT_NAME,
    };
    let tensor = file.tensor(chosen).map_err(|_| {
        let why = if name.is_some() {
            format!("no tensor named '{chosen}'")
        } else {
            format!("several tensors and none named '{DEFAULT_NAME}'")
        };
        Error::format(path, format!("{why}; the file holds {}", names()))
    })?;
    decode(path, &tensor)
}

fn decode(path: &Path, tensor: &TensorView<'_>) -> Result<Embeddings> {
    let dtype = tensor.dtype();
    if !matches!(dtype, Dtype::F32 | Dtype::F64) {
        return Err(Error::Dtype {
            path: path.to_path_buf(),
            dtype: dtype.to_string(),
            expected: "expected an F32 or F64 tensor",
        });
    }
    let &[rows, cols] = tensor.shape() else {
        return Err(rank2_error(path, tensor.shape().to_vec()));
    };
    let shape_error = |e: ndarray::ShapeError| Error::format(path, format!("tensor data: {e}"));
    // safetensors data is little-endian and C-ordered, but not necessarily aligned, so decode
    // element by element instead of reinterpreting the buffer.
    if dtype == Dtype::F32 {
        let (chunks, _) = tensor.data().as_chunks::<4>();
        let values = chunks.iter().map(|&b| f32::from_le_bytes(b)).collect();
        Ok(Embeddings::F32(
            Array2::from_shape_vec((rows, cols), values).map_err(shape_error)?,
        ))
    } else {
        let (chunks, _) = tensor.data().as_chunks::<8>();
        let values = chunks.iter().map(|&b| f64::from_le_bytes(b)).collect();
        Ok(Embeddings::F64(
            Array2::from_shape_vec((rows, cols), values).map_err(shape_error)?,
        ))
    }
}

/// Writes named embedding matrices to a `.safetensors` file, each in its own precision.
/// Atomic like [`write_npy`](super::write_npy); duplicate names are an
/// [`Error::InvalidArgument`].
pub fn write_safetensors(path: impl AsRef<Path>, tensors: &[(&str, &Embeddings)]) -> Result<()> {
    let path = path.as_ref();
    for (i, (name, _)) in tensors.iter().enumerate() {
        if tensors[..i].iter().any(|(other, _)| other == name) {
            return Err(Error::InvalidArgument(format!(
                "{}: tensor name '{name}' given twice",
                path.display()
            )));
        }
    }

    let encoded: Vec<(Dtype, [usize; 2], Vec<u8>)> = tensors
        .iter()
        .map(|(_, e)| match e {
            Embeddings::F32(a) => (
                Dtype::F32,
                [a.nrows(), a.ncols()],
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            Embeddings::F64(a) => (
                Dtype::F64,
                [a.nrows(), a.ncols()],
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = tensors
        .iter()
        .zip(&encoded)
        .map(|((name, _), (dtype, shape, data))| {
            TensorView::new(*dtype, shape.to_vec(), data).map(|v| (*name, v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::format(path, format!("cannot encode tensor: {e}")))?;
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| Error::format(path, format!("cannot serialize: {e}")))?;
    atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::read_embeddings;
    use ndarray::array;

    fn f32s() -> Embeddings {
        Embeddings::F32(array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.5]])
    }

    fn f64s() -> Embeddings {
        Embeddings::F64(array![[0.1f64, 0.2], [0.3, 1e-300], [-7.0, 8.0]])
    }

    #[test]
    fn single_tensor_round_trip_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        for (k, e) in [f32s(), f64s()].iter().enumerate() {
            let p = dir.path().join(format!("one_{k}.safetensors"));
            write_safetensors(&p, &[("whatever", e)]).unwrap();
            assert_eq!(&read_embeddings(&p).unwrap(), e);
            assert_eq!(&read_safetensors_tensor(&p, Some("whatever")).unwrap(), e);
        }
        let empty = Embeddings::F32(Array2::zeros((0, 4)));
        let p = dir.path().join("empty.safetensors");
        write_safetensors(&p, &[("e", &empty)]).unwrap();
        assert_eq!(read_embeddings(&p).unwrap(), empty);
    }

    #[test]
    fn two_tensors_use_the_embeddings_name_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (f32s(), f64s());

        let p = dir.path().join("named.safetensors");
        write_safetensors(&p, &[("proxies", &a), ("embeddings", &b)]).unwrap();
        assert_eq!(read_embeddings(&p).unwrap(), b);
        assert_eq!(read_safetensors_tensor(&p, Some("proxies")).unwrap(), a);
        match read_safetensors_tensor(&p, Some("nope")) {
            Err(Error::Format { what, .. }) => {
                assert!(what.contains("'embeddings', 'proxies'"), "{what}")
            }
            other => panic!("expected Format error, got {other:?}"),
        }

        let p = dir.path().join("anon.safetensors");
        write_safetensors(&p, &[("grd", &a), ("sat", &b)]).unwrap();
        match read_embeddings(&p) {
            Err(Error::Format { path, what }) => {
                assert_eq!(path, p);
                assert!(what.contains("'grd', 'sat'"), "{what}");
            }
            other => panic!("expected Format error, got {other:?}"),
        }
        assert_eq!(read_safetensors_tensor(&p, Some("sat")).unwrap(), b);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dup.safetensors");
        let e = f32s();
        assert!(matches!(
            write_safetensors(&p, &[("x", &e), ("x", &e)]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!p.exists());
    }

    #[test]
    fn bad_files_dtypes_and_ranks_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.safetensors");
        std::fs::write(&p, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
        assert!(matches!(read_embeddings(&p), Err(Error::Format { path, .. }) if path == p));

        let ints: Vec<u8> = [1i32, 2, 3, 4]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let flat: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = safetensors::serialize(
            [
                (
                    "ints",
                    TensorView::new(Dtype::I32, vec![2, 2], &ints).unwrap(),
                ),
                ("flat", TensorView::new(Dtype::F32, vec![2], &flat).unwrap()),
            ],
            None,
        )
        .unwrap();
        let p = dir.path().join("odd.safetensors");
        std::fs::write(&p, bytes).unwrap();
        assert!(matches!(
            read_safetensors_tensor(&p, Some("ints")),
            Err(Error::Dtype { dtype, .. }) if dtype == "I32"
        ));
        assert!(matches!(
            read_safetensors_tensor(&p, Some("flat")),
            Err(Error::Shape { got, .. }) if got == vec![2]
        ));

        let empty = safetensors::serialize(Vec::<(&str, TensorView<'_>)>::new(), None).unwrap();
        let p = dir.path().join("none.safetensors");
        std::fs::write(&p, empty).unwrap();
        assert!(matches!(read_embeddings(&p), Err(Error::Format { .. })));
    }
}
