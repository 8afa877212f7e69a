//! Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
//!
//! The header is a Python dict literal; it is parsed by hand rather than with a general
//! evaluator so that hostile files can only ever produce an error, never a crash.

use std::path::{Path, PathBuf};

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};

use super::atomic::atomic_write;
use crate::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// numpy aligns the start of the data to this many bytes so that memory-mapped arrays are
/// aligned for any element type; matching it keeps our files byte-identical in layout.
const ALIGN: usize = 64;

/// Bounds the recursion of the header parser so nested brackets in a hostile header cannot
/// overflow the stack.
const MAX_DEPTH: usize = 32;

/// What labels and integer readers accept, for [`Error::Dtype`] messages.
pub(crate) const EXPECT_INT: &str =
    "expected a little-endian integer dtype: i1, i2, i4, i8, u1, u2, u4 or u8";
/// What embedding readers accept, for [`Error::Dtype`] messages.
pub(crate) const EXPECT_FLOAT: &str = "expected little-endian float32 '<f4' or float64 '<f8'";
const EXPECT_NUMERIC: &str =
    "expected a little-endian float (f4, f8) or integer (i1..i8, u1..u8) dtype";

/// The element types metron reads; all are little-endian (or single-byte) in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NpyDtype {
    I1,
    I2,
    I4,
    I8,
    U1,
    U2,
    U4,
    U8,
    F4,
    F8,
}

impl NpyDtype {
    fn itemsize(self) -> usize {
        match self {
            NpyDtype::I1 | NpyDtype::U1 => 1,
            NpyDtype::I2 | NpyDtype::U2 => 2,
            NpyDtype::I4 | NpyDtype::U4 | NpyDtype::F4 => 4,
            NpyDtype::I8 | NpyDtype::U8 | NpyDtype::F8 => 8,
        }
    }

    /// Parses a descr such as `<f4` or `|u1`; `None` for anything metron cannot read as-is
    /// (big-endian, complex, half precision, strings, objects, ...).
    fn from_descr(descr: &str) -> Option<NpyDtype> {
        let native_little = cfg!(target_endian = "little");
        let (little, rest) = match descr.as_bytes().first()? {
            b'<' => (true, &descr[1..]),
            b'>' => (false, &descr[1..]),
            b'|' => (false, &descr[1..]),
            b'=' => (native_little, &descr[1..]),
            _ => (native_little, descr),
        };
        let dtype = match rest {
            "i1" => NpyDtype::I1,
            "i2" => NpyDtype::I2,
            "i4" => NpyDtype::I4,
            "i8" => NpyDtype::I8,
            "u1" => NpyDtype::U1,
            "u2" => NpyDtype::U2,
            "u4" => NpyDtype::U4,
            "u8" => NpyDtype::U8,
            "f4" => NpyDtype::F4,
            "f8" => NpyDtype::F8,
            _ => return None,
        };
        // Byte order is meaningless for one-byte types, so any marker is fine there.
        (little || dtype.itemsize() == 1).then_some(dtype)
    }
}

/// A parsed `.npy` file: the header fields plus the whole file, whose tail is the data.
#[derive(Debug)]
pub(crate) struct RawNpy {
    pub(crate) path: PathBuf,
    pub(crate) descr: String,
    pub(crate) dtype: NpyDtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) fortran_order: bool,
    /// Positioned at the first data byte: the data is decoded straight from the file, chunk
    /// by chunk, so a large array is never held in memory twice (raw bytes plus values).
    file: std::io::BufReader<std::fs::File>,
}

impl RawNpy {
    /// Reads and validates `path`. `expected` words the [`Error::Dtype`] raised when the file
    /// holds an element type metron cannot read at all.
    pub(crate) fn read(path: &Path, expected: &'static str) -> Result<RawNpy> {
        use std::io::Read;
        let io = |e| Error::io(path, e);
        let file = std::fs::File::open(path).map_err(io)?;
        let file_len = usize::try_from(file.metadata().map_err(io)?.len()).unwrap_or(usize::MAX);
        let mut file = std::io::BufReader::with_capacity(1 << 20, file);
        // The fixed prefix first, then exactly the header it announces (or what the file has).
        let mut head = vec![0u8; file_len.min(12)];
        file.read_exact(&mut head).map_err(io)?;
        let header_end = match head.get(6) {
            Some(1) if head.len() >= 10 => 10 + usize::from(u16::from_le_bytes([head[8], head[9]])),
            Some(2 | 3) if head.len() >= 12 => {
                12 + usize::try_from(u32::from_le_bytes([head[8], head[9], head[10], head[11]]))
                    .unwrap_or(usize::MAX - 12)
            }
            _ => head.len(),
        };
        let header_end = header_end.min(file_len);
        if header_end > head.len() {
            let mut rest = vec![0u8; header_end - head.len()];
            file.read_exact(&mut rest).map_err(io)?;
            head.extend_from_slice(&rest);
        } else {
            // A v1 header is 10 bytes of prefix: put the 2 extra bytes read back in front.
            head.truncate(header_end);
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(header_end as u64))
                .map_err(io)?;
        }
        Self::parse(path, &head, file_len, file, expected)
    }

    fn parse(
        path: &Path,
        bytes: &[u8],
        file_len: usize,
        file: std::io::BufReader<std::fs::File>,
        expected: &'static str,
    ) -> Result<RawNpy> {
        let fmt = |what: String| Error::format(path, what);
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(fmt("not an .npy file (missing the \\x93NUMPY magic)".into()));
        }
        let (major, minor) = (bytes[6], bytes[7]);
        let (header_len, prefix): (usize, usize) = match major {
            1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
            2 | 3 => {
                let Some(len) = bytes.get(8..12) else {
                    return Err(fmt(format!(
                        "truncated .npy header: {} bytes in the file",
                        bytes.len()
                    )));
                };
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
                (usize::try_from(len).unwrap_or(usize::MAX), 12)
            }
            _ => {
                return Err(fmt(format!(
                    "unsupported .npy format version {major}.{minor} (1.x, 2.x and 3.x are supported)"
                )));
            }
        };
        let data_start = prefix.saturating_add(header_len);
        let Some(header) = bytes.get(prefix..data_start) else {
            return Err(fmt(format!(
                "truncated .npy header: it claims {header_len} bytes but only {} follow",
                file_len - prefix
            )));
        };
        let header = Header::parse(header).map_err(|why| {
            fmt(format!(
                "malformed .npy header ({why}): {}",
                snippet(&bytes[prefix..data_start])
            ))
        })?;

        let Some(dtype) = NpyDtype::from_descr(&header.descr) else {
            return Err(Error::Dtype {
                path: path.to_path_buf(),
                dtype: header.descr,
                expected,
            });
        };
        let expected_len = header
            .shape
            .iter()
            .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                fmt(format!(
                    "shape {:?} of {} is too large to address",
                    header.shape, header.descr
                ))
            })?;
        let found = file_len - data_start;
        if found != expected_len {
            let what = if found < expected_len {
                "truncated data"
            } else {
                "trailing bytes after the data"
            };
            return Err(fmt(format!(
                "{what}: shape {:?} of {} needs {expected_len} data bytes, found {found}",
                header.shape, header.descr
            )));
        }

        Ok(RawNpy {
            path: path.to_path_buf(),
            descr: header.descr,
            dtype,
            shape: header.shape,
            fortran_order: header.fortran_order,
            file,
        })
    }

    /// Decodes every element with `f`, reading the file in 1 MiB chunks.
    fn decode<const N: usize, T>(&mut self, f: impl Fn([u8; N]) -> T) -> Result<Vec<T>> {
        self.try_decode(|b, _| Ok(f(b)))
    }

    /// [`Self::decode`] with a fallible conversion, given the element's flat index.
    fn try_decode<const N: usize, T>(
        &mut self,
        f: impl Fn([u8; N], usize) -> Result<T>,
    ) -> Result<Vec<T>> {
        use std::io::Read;
        let count: usize = self.shape.iter().product();
        let mut out = Vec::with_capacity(count);
        let mut chunk = vec![0u8; (1 << 20) / N * N];
        while out.len() < count {
            let take = ((count - out.len()) * N).min(chunk.len());
            self.file
                .read_exact(&mut chunk[..take])
                .map_err(|e| Error::io(&self.path, e))?;
            let (elems, _) = chunk[..take].as_chunks::<N>();
            for &c in elems {
                let i = out.len();
                out.push(f(c, i)?);
            }
        }
        Ok(out)
    }

    /// The data as f32; only for `<f4` files, since narrowing f64 would silently lose
    /// precision the caller asked to keep.
    pub(crate) fn into_f32(mut self) -> Result<ArrayD<f32>> {
        let values = match self.dtype {
            NpyDtype::F4 => self.decode(f32::from_le_bytes)?,
            _ => return Err(self.dtype_error(EXPECT_FLOAT)),
        };
        self.into_array(values)
    }

    /// The data as f64; integers are converted, which is exact up to 2^53.
    pub(crate) fn into_f64(mut self) -> Result<ArrayD<f64>> {
        let values = match self.dtype {
            NpyDtype::F4 => self.decode(|b| f64::from(f32::from_le_bytes(b)))?,
            NpyDtype::F8 => self.decode(f64::from_le_bytes)?,
            NpyDtype::I1 => self.decode(|b| f64::from(i8::from_le_bytes(b)))?,
            NpyDtype::I2 => self.decode(|b| f64::from(i16::from_le_bytes(b)))?,
            NpyDtype::I4 => self.decode(|b| f64::from(i32::from_le_bytes(b)))?,
            NpyDtype::I8 => self.decode(|b| i64::from_le_bytes(b) as f64)?,
            NpyDtype::U1 => self.decode(|b| f64::from(u8::from_le_bytes(b)))?,
            NpyDtype::U2 => self.decode(|b| f64::from(u16::from_le_bytes(b)))?,
            NpyDtype::U4 => self.decode(|b| f64::from(u32::from_le_bytes(b)))?,
            NpyDtype::U8 => self.decode(|b| u64::from_le_bytes(b) as f64)?,
        };
        self.into_array(values)
    }

    /// The data as i64; floats are refused rather than truncated, and u64 values beyond
    /// `i64::MAX` are a [`Error::Format`].
    pub(crate) fn into_i64(mut self) -> Result<ArrayD<i64>> {
        let values = match self.dtype {
            NpyDtype::I1 => self.decode(|b| i64::from(i8::from_le_bytes(b)))?,
            NpyDtype::I2 => self.decode(|b| i64::from(i16::from_le_bytes(b)))?,
            NpyDtype::I4 => self.decode(|b| i64::from(i32::from_le_bytes(b)))?,
            NpyDtype::I8 => self.decode(i64::from_le_bytes)?,
            NpyDtype::U1 => self.decode(|b| i64::from(u8::from_le_bytes(b)))?,
            NpyDtype::U2 => self.decode(|b| i64::from(u16::from_le_bytes(b)))?,
            NpyDtype::U4 => self.decode(|b| i64::from(u32::from_le_bytes(b)))?,
            NpyDtype::U8 => {
                let path = self.path.clone();
                self.try_decode(|b, i| {
                    let v = u64::from_le_bytes(b);
                    i64::try_from(v).map_err(|_| {
                        Error::format(
                            &path,
                            format!(
                                "value {v} at flat index {i} does not fit in a signed 64-bit integer"
                            ),
                        )
                    })
                })?
            }
            NpyDtype::F4 | NpyDtype::F8 => return Err(self.dtype_error(EXPECT_INT)),
        };
        self.into_array(values)
    }

    pub(crate) fn dtype_error(&self, expected: &'static str) -> Error {
        Error::Dtype {
            path: self.path.clone(),
            dtype: self.descr.clone(),
            expected,
        }
    }

    /// Shapes the decoded values, turning Fortran-order data into C order so every caller can
    /// rely on a standard-layout array.
    fn into_array<T: Clone>(self, values: Vec<T>) -> Result<ArrayD<T>> {
        let shape = IxDyn(&self.shape);
        let built = if self.fortran_order {
            ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
        } else {
            ArrayD::from_shape_vec(shape, values)
        };
        built.map_err(|e| Error::format(&self.path, format!("inconsistent shape: {e}")))
    }
}

/// A header excerpt short enough to quote in an error message.
fn snippet(header: &[u8]) -> String {
    const MAX: usize = 120;
    let text: String = header.iter().take(MAX).map(|&b| char::from(b)).collect();
    let text = text.trim_end();
    if header.len() > MAX {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// The three fields numpy puts in every header.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn parse(text: &[u8]) -> std::result::Result<Header, String> {
        let mut p = Parser { s: text, pos: 0 };
        let value = p.value(0)?;
        p.skip_ws();
        if p.pos != text.len() {
            return Err(format!("unexpected text at byte {}", p.pos));
        }
        let PyValue::Dict(entries) = value else {
            return Err("the header is not a dict".into());
        };

        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        for (key, value) in entries {
            let PyValue::Str(key) = key else {
                return Err("dict keys must be strings".into());
            };
            let slot_taken = match key.as_str() {
                "descr" => descr.replace(value).is_some(),
                "fortran_order" => fortran_order.replace(value).is_some(),
                "shape" => shape.replace(value).is_some(),
                // numpy itself rejects extra keys, but they cannot change how the data reads.
                _ => false,
            };
            if slot_taken {
                return Err(format!("key '{key}' appears twice"));
            }
        }

        let descr = match descr {
            Some(PyValue::Str(s)) => s,
            // A list descr is a structured (record) dtype; report it as a dtype, not garbage.
            Some(PyValue::List(_)) => "structured dtype".into(),
            Some(_) => return Err("'descr' is not a string".into()),
            None => return Err("missing key 'descr'".into()),
        };
        let fortran_order = match fortran_order {
            Some(PyValue::Bool(b)) => b,
            Some(_) => return Err("'fortran_order' is not True or False".into()),
            None => return Err("missing key 'fortran_order'".into()),
        };
        let shape = match shape {
            Some(PyValue::Tuple(items) | PyValue::List(items)) => items
                .into_iter()
                .map(|v| match v {
                    PyValue::Int(n) => usize::try_from(n)
                        .map_err(|_| format!("dimension {n} does not fit in memory")),
                    _ => Err("'shape' must hold non-negative integers".into()),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
            Some(_) => return Err("'shape' is not a tuple".into()),
            None => return Err("missing key 'shape'".into()),
        };
        Ok(Header {
            descr,
            fortran_order,
            shape,
        })
    }
}

/// The subset of Python literals that can appear in an npy header.
#[derive(Debug)]
enum PyValue {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", char::from(c), self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<PyValue, String> {
        if depth > MAX_DEPTH {
            return Err("nesting too deep".into());
        }
        self.skip_ws();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q).map(PyValue::Str),
            Some(b'(') => self.seq(b')', depth).map(PyValue::Tuple),
            Some(b'[') => self.seq(b']', depth).map(PyValue::List),
            Some(b'{') => self.dict(depth),
            Some(c) if c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => self.ident(),
            Some(c) => Err(format!(
                "unexpected '{}' at byte {}",
                char::from(c).escape_default(),
                self.pos
            )),
            None => Err("unexpected end of header".into()),
        }
    }

    fn string(&mut self, quote: u8) -> std::result::Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated string starting at byte {start}")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    // Escapes only occur in exotic field names; keeping the escaped byte is
                    // enough to find the closing quote correctly.
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> std::result::Result<PyValue, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        let n = digits
            .parse::<u64>()
            .map_err(|_| format!("integer {digits} is out of range"))?;
        // Python 2 era files write long integers as `3L`.
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(PyValue::Int(n))
    }

    fn ident(&mut self) -> std::result::Result<PyValue, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        match &self.s[start..self.pos] {
            b"True" => Ok(PyValue::Bool(true)),
            b"False" => Ok(PyValue::Bool(false)),
            b"None" => Ok(PyValue::None),
            other => Err(format!(
                "unknown name '{}' at byte {start}",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// Comma-separated items up to `close`, trailing comma allowed: covers `()`, `(3,)`,
    /// `(3, 4)` and lists.
    fn seq(&mut self, close: u8, depth: usize) -> std::result::Result<Vec<PyValue>, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at byte {}",
                        char::from(close),
                        self.pos
                    ));
                }
            }
        }
    }

    fn dict(&mut self, depth: usize) -> std::result::Result<PyValue, String> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(PyValue::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
            }
        }
    }
}

/// Reads any `.npy` holding floats (`f4`, `f8`) or integers (`i1`..`i8`, `u1`..`u8`) as f64,
/// in C order whatever the file's order. Integers beyond 2^53 are rounded.
pub fn read_npy_f64(path: impl AsRef<Path>) -> Result<ArrayD<f64>> {
    RawNpy::read(path.as_ref(), EXPECT_NUMERIC)?.into_f64()
}

/// Reads an integer `.npy` (`i1`..`i8`, `u1`..`u8`) as i64, in C order. Float files are a
/// [`Error::Dtype`]; u64 values beyond `i64::MAX` are a [`Error::Format`].
pub fn read_npy_i64(path: impl AsRef<Path>) -> Result<ArrayD<i64>> {
    RawNpy::read(path.as_ref(), EXPECT_INT)?.into_i64()
}

/// An element type [`write_npy`] can store.
pub trait NpyElement: Copy {
    /// The numpy dtype string written to the header, e.g. `'<f4'`.
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `self` to `out`.
    fn write_le(self, out: &mut Vec<u8>);
}

macro_rules! npy_element {
    ($($t:ty => $descr:literal),* $(,)?) => {$(
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

npy_element! {
    f32 => "<f4",
    f64 => "<f8",
    i8 => "|i1",
    i16 => "<i2",
    i32 => "<i4",
    i64 => "<i8",
    u8 => "|u1",
    u16 => "<u2",
    u32 => "<u4",
    u64 => "<u8",
}

/// Writes `array` as a version 1.0 `.npy` file in C order (whatever its memory layout), with the
/// data aligned to 64 bytes as numpy does. The write is atomic: readers see either the old file
/// or the complete new one.
pub fn write_npy<T, S, D>(path: impl AsRef<Path>, array: &ArrayBase<S, D>) -> Result<()>
where
    T: NpyElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let mut out = npy_header(T::DESCR, array.shape());
    out.reserve(array.len() * std::mem::size_of::<T>());
    for &v in array.iter() {
        v.write_le(&mut out);
    }
    atomic_write(path, &out)
}

/// The magic, version, length and padded dict, ready for the data to be appended.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("({})", parts.join(", "))
        }
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");

    // Version 1.0 stores the header length in a u16; only absurd ranks need 2.0, as in numpy.
    let unpadded_v1 = 10 + dict.len() + 1;
    let (major, prefix) = if unpadded_v1.next_multiple_of(ALIGN) - 10 <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + dict.len() + 1).next_multiple_of(ALIGN);
    let header_len = total - prefix;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&u16::try_from(header_len).unwrap_or(u16::MAX).to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(header_len).unwrap_or(u32::MAX).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Hand-builds `.npy` bytes so tests can produce files numpy could have written, including ones
/// [`write_npy`] never produces (Fortran order, other dtypes, odd formatting).
#[cfg(test)]
pub(crate) fn npy_bytes(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if major == 1 { 10 } else { 12 };
    let total = (prefix + dict.len() + 1).next_multiple_of(ALIGN);
    let header_len = total - prefix;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&u16::try_from(header_len).unwrap().to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(header_len).unwrap().to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, Array2, Array3, array};

    fn le_bytes<T: NpyElement>(values: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        for &v in values {
            v.write_le(&mut out);
        }
        out
    }

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trips_f32_f64_i64_in_several_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let shapes: [&[usize]; 6] = [&[], &[5], &[3, 4], &[0, 4], &[4, 0], &[2, 3, 4]];
        for (k, shape) in shapes.iter().enumerate() {
            let n: usize = shape.iter().product();
            let f64s = ArrayD::from_shape_vec(
                IxDyn(shape),
                (0..n).map(|i| i as f64 * 0.5 - 3.0).collect(),
            )
            .unwrap();
            let p = dir.path().join(format!("f64_{k}.npy"));
            write_npy(&p, &f64s).unwrap();
            assert_eq!(read_npy_f64(&p).unwrap(), f64s);

            let f32s = f64s.mapv(|x| x as f32 + 0.25);
            let p = dir.path().join(format!("f32_{k}.npy"));
            write_npy(&p, &f32s).unwrap();
            let raw = RawNpy::read(&p, EXPECT_FLOAT).unwrap();
            assert_eq!(raw.descr, "<f4");
            assert_eq!(raw.into_f32().unwrap(), f32s);

            let i64s = f64s.mapv(|x| (x * 1e12) as i64 - (1 << 60));
            let p = dir.path().join(format!("i64_{k}.npy"));
            write_npy(&p, &i64s.view()).unwrap();
            assert_eq!(read_npy_i64(&p).unwrap(), i64s);
        }
    }

    #[test]
    fn written_header_matches_numpy_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &Array2::<f64>::zeros((64, 16))).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        let text = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (64, 16), }"));
        assert_eq!(bytes.len(), 10 + header_len + 64 * 16 * 8);

        write_npy(&p, &Array::from_vec(vec![1u8, 2, 3])).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!(bytes.len(), 10 + header_len + 3);
        let text = String::from_utf8_lossy(&bytes[10..10 + header_len]);
        assert!(text.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }"));
    }

    #[test]
    fn non_contiguous_views_are_written_in_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = array![[1i32, 2, 3], [4, 5, 6]];
        let p = dir.path().join("t.npy");
        write_npy(&p, &a.t()).unwrap();
        let back = read_npy_i64(&p).unwrap();
        assert_eq!(back, array![[1i64, 4], [2, 5], [3, 6]].into_dyn());

        let strided = a.slice(ndarray::s![.., ..;2]);
        write_npy(&p, &strided).unwrap();
        assert_eq!(
            read_npy_i64(&p).unwrap(),
            array![[1i64, 3], [4, 6]].into_dyn()
        );
    }

    #[test]
    fn fortran_order_reads_as_the_transposed_data() {
        let dir = tempfile::tempdir().unwrap();
        let flat: Vec<f64> = (0..6).map(f64::from).collect();
        let bytes = npy_bytes(
            1,
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            &le_bytes(&flat),
        );
        let p = write_file(dir.path(), "f.npy", &bytes);
        let got = read_npy_f64(&p).unwrap();
        let expected = Array2::from_shape_vec((3, 2), flat)
            .unwrap()
            .reversed_axes();
        assert_eq!(got, expected.into_dyn());
        assert!(got.is_standard_layout());

        // Three dimensions: element [i, j, k] sits at i + 2j + 6k in Fortran order.
        let flat: Vec<i64> = (0..24).collect();
        let bytes = npy_bytes(
            1,
            "{'shape': (2, 3, 4), 'fortran_order': True, 'descr': '<i8'}",
            &le_bytes(&flat),
        );
        let p = write_file(dir.path(), "f3.npy", &bytes);
        let got = read_npy_i64(&p).unwrap();
        let expected = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i + 2 * j + 6 * k) as i64);
        assert_eq!(got, expected.into_dyn());
    }

    #[test]
    fn header_parser_is_tolerant_of_formatting() {
        let cases: [(&str, &[usize], bool); 7] = [
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (64, 16), }",
                &[64, 16],
                false,
            ),
            (
                "{\"shape\":(3,),\"descr\":\"<f4\",\"fortran_order\":True}",
                &[3],
                true,
            ),
            (
                "{ 'fortran_order' : False , 'shape' : ( ) , 'descr' : '<i8' , }",
                &[],
                false,
            ),
            (
                "{'descr': '<u2', 'fortran_order': False, 'shape': (2L, 5L), }",
                &[2, 5],
                false,
            ),
            (
                "{'descr':'|u1','fortran_order':False,'shape':[4, 1]}",
                &[4, 1],
                false,
            ),
            (
                "{'descr': '<f8',\n 'fortran_order': False,\n 'shape': (1, 2, 3,),}",
                &[1, 2, 3],
                false,
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (0,), 'extra': None}",
                &[0],
                false,
            ),
        ];
        for (text, shape, fortran) in cases {
            let h = Header::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(h.shape, shape, "{text}");
            assert_eq!(h.fortran_order, fortran, "{text}");
        }
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        let bad = [
            "",
            "{",
            "{'descr': '<f8'",
            "{'descr': '<f8', 'fortran_order': False}",
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} junk",
            "{'descr: '<f8', 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f8' 'fortran_order': False, 'shape': (1,)}",
            "[1, 2]",
        ];
        for text in bad {
            assert!(Header::parse(text.as_bytes()).is_err(), "{text}");
        }
        let deep = "(".repeat(10_000);
        assert!(Header::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn every_integer_dtype_reads_as_i64_and_f64() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, Vec<i64>)> = vec![
            ("|i1", le_bytes(&[-128i8, 0, 127]), vec![-128, 0, 127]),
            ("|u1", le_bytes(&[0u8, 1, 255]), vec![0, 1, 255]),
            (
                "<i2",
                le_bytes(&[-32768i16, 7, 32767]),
                vec![-32768, 7, 32767],
            ),
            ("<u2", le_bytes(&[0u16, 9, 65535]), vec![0, 9, 65535]),
            (
                "<i4",
                le_bytes(&[i32::MIN, 3, i32::MAX]),
                vec![i64::from(i32::MIN), 3, i64::from(i32::MAX)],
            ),
            (
                "<u4",
                le_bytes(&[0u32, 4, u32::MAX]),
                vec![0, 4, i64::from(u32::MAX)],
            ),
            (
                "<i8",
                le_bytes(&[i64::MIN, -1, i64::MAX]),
                vec![i64::MIN, -1, i64::MAX],
            ),
            (
                "<u8",
                le_bytes(&[0u64, 5, i64::MAX as u64]),
                vec![0, 5, i64::MAX],
            ),
        ];
        for (descr, data, expected) in cases {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}");
            let p = write_file(dir.path(), "i.npy", &npy_bytes(1, &dict, &data));
            assert_eq!(
                read_npy_i64(&p).unwrap().into_raw_vec_and_offset().0,
                expected,
                "{descr}"
            );
            let as_f64: Vec<f64> = expected.iter().map(|&v| v as f64).collect();
            assert_eq!(
                read_npy_f64(&p).unwrap().into_raw_vec_and_offset().0,
                as_f64,
                "{descr}"
            );
        }
    }

    #[test]
    fn u64_beyond_i64_max_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let dict = "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }";
        let data = le_bytes(&[1u64, u64::MAX]);
        let p = write_file(dir.path(), "u.npy", &npy_bytes(1, dict, &data));
        match read_npy_i64(&p) {
            Err(Error::Format { path, what }) => {
                assert_eq!(path, p);
                assert!(what.contains("flat index 1"), "{what}");
            }
            other => panic!("expected Format error, got {other:?}"),
        }
    }

    #[test]
    fn versions_2_and_3_are_read() {
        let dir = tempfile::tempdir().unwrap();
        for major in [2u8, 3] {
            let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
            let p = write_file(
                dir.path(),
                "v.npy",
                &npy_bytes(major, dict, &le_bytes(&[1.5f32, -2.0])),
            );
            assert_eq!(
                read_npy_f64(&p).unwrap().into_raw_vec_and_offset().0,
                vec![1.5, -2.0]
            );
        }
    }

    #[test]
    fn malformed_files_give_the_right_variant() {
        let dir = tempfile::tempdir().unwrap();
        let good = npy_bytes(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            &le_bytes(&[1.0f64, 2.0, 3.0, 4.0]),
        );

        let p = write_file(dir.path(), "magic.npy", b"PK\x03\x04 not numpy at all");
        assert!(matches!(read_npy_f64(&p), Err(Error::Format { path, .. }) if path == p));

        let p = write_file(dir.path(), "short.npy", b"\x93NUMPY");
        assert!(matches!(read_npy_f64(&p), Err(Error::Format { .. })));

        let mut version = good.clone();
        version[6] = 9;
        let p = write_file(dir.path(), "version.npy", &version);
        assert!(
            matches!(read_npy_f64(&p), Err(Error::Format { what, .. }) if what.contains("9.0"))
        );

        let p = write_file(dir.path(), "trunc_header.npy", &good[..40]);
        assert!(
            matches!(read_npy_f64(&p), Err(Error::Format { what, .. }) if what.contains("header"))
        );

        let p = write_file(dir.path(), "trunc.npy", &good[..good.len() - 3]);
        match read_npy_f64(&p) {
            Err(Error::Format { path, what }) => {
                assert_eq!(path, p);
                assert!(what.contains("32") && what.contains("29"), "{what}");
            }
            other => panic!("expected Format error, got {other:?}"),
        }

        let mut long = good.clone();
        long.push(0);
        let p = write_file(dir.path(), "long.npy", &long);
        assert!(matches!(read_npy_f64(&p), Err(Error::Format { what, .. }) if what.contains("33")));

        let big = npy_bytes(
            1,
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            &[0x3f, 0x80, 0, 0],
        );
        let p = write_file(dir.path(), "big.npy", &big);
        assert!(matches!(read_npy_f64(&p), Err(Error::Dtype { dtype, .. }) if dtype == ">f4"));

        let complex = npy_bytes(
            1,
            "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        );
        let p = write_file(dir.path(), "complex.npy", &complex);
        assert!(matches!(read_npy_f64(&p), Err(Error::Dtype { dtype, .. }) if dtype == "<c8"));

        let structured = npy_bytes(
            1,
            "{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 12],
        );
        let p = write_file(dir.path(), "rec.npy", &structured);
        assert!(matches!(read_npy_f64(&p), Err(Error::Dtype { .. })));

        let p = write_file(dir.path(), "float.npy", &good);
        assert!(
            matches!(read_npy_i64(&p), Err(Error::Dtype { expected, .. }) if expected == EXPECT_INT)
        );

        let huge = npy_bytes(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
            &[],
        );
        let p = write_file(dir.path(), "huge.npy", &huge);
        assert!(matches!(read_npy_f64(&p), Err(Error::Format { .. })));

        // A zero extent makes the byte count 0, so only the array constructor sees the overflow.
        let zero_huge = npy_bytes(
            1,
            "{'descr': '<f8', 'fortran_order': True, 'shape': (0, 9223372036854775807, 9223372036854775807), }",
            &[],
        );
        let p = write_file(dir.path(), "zero_huge.npy", &zero_huge);
        assert!(matches!(read_npy_f64(&p), Err(Error::Format { .. })));

        let missing = dir.path().join("missing.npy");
        assert!(matches!(read_npy_f64(&missing), Err(Error::Io { path, .. }) if path == missing));
    }

    #[test]
    fn reads_the_oracle_embeddings_and_labels() {
        let emb = read_npy_f64(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/oracles/inputs/s64_norm_emb.npy"
        ))
        .unwrap();
        assert_eq!(emb.shape(), &[64, 16]);
        let labels = read_npy_i64(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/oracles/inputs/s64_norm_labels.npy"
        ))
        .unwrap();
        assert_eq!(labels.shape(), &[64]);
    }
}
