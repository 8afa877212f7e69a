//! Level-5 MAT-files: MATLAB's `save` format (v5 to v7, with v7's zlib-compressed variables),
//! in which Cars196 and CVACT ship their indices.
//!
//! The `matfile` crate (0.5) reads numeric arrays only: it skips char, cell and struct arrays,
//! and both indices are struct arrays of strings and numbers. So this reads the subset such
//! index files use: numeric (and logical), char, cell and struct arrays. Objects, sparse
//! matrices and the opaque classes (MATLAB `string` arrays) are recognised and kept as
//! [`MatData::Unsupported`]. v7.3 files are HDF5 and are refused with a message that says so.
//!
//! The input may be hostile (a fuzzer, a corrupt download): every length is checked against
//! the bytes that are there before anything is allocated, nesting is bounded, and a
//! compressed variable may inflate to at most [`MAX_INFLATED`] bytes.

use std::io::Read;
use std::path::Path;

use crate::{DatasetError, Result};

/// Largest size a compressed variable may inflate to. Dataset indices are a few MB; the bound
/// keeps a corrupt or hostile stream from taking the machine's memory.
pub const MAX_INFLATED: usize = 256 << 20;

/// Cells and structs nest at most this deep; deeper input would only exhaust the stack.
const MAX_DEPTH: usize = 32;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;

/// The variables of a MAT-file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    /// Each variable's name with its array.
    pub variables: Vec<(String, MatArray)>,
}

impl MatFile {
    /// The first variable called `name`.
    pub fn get(&self, name: &str) -> Option<&MatArray> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }
}

/// One MATLAB array. Elements are in MATLAB's column-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// The extent of each dimension (at least two, as MATLAB stores them; `[rows, cols, ...]`).
    pub dims: Vec<usize>,
    /// The elements, by class.
    pub data: MatData,
}

/// The contents of a [`MatArray`] by class.
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// Every real numeric class and logical, widened to f64 (exact for all but 64-bit integers
    /// beyond 2^53, which no index holds). The imaginary part of a complex array is dropped.
    Numeric(Vec<f64>),
    /// One char per element (MATLAB stores UTF-16 code units; each becomes one `char`).
    Char(Vec<char>),
    /// One array per cell.
    Cell(Vec<MatArray>),
    /// `values[e * fields.len() + f]` is field `f` of element `e`.
    Struct {
        /// The field names, in file order.
        fields: Vec<String>,
        /// Every element's field values, element by element (see above).
        values: Vec<MatArray>,
    },
    /// A class this reader does not decode (MATLAB's class number: 3 object, 5 sparse,
    /// 16 function handle, 17 opaque such as `string`, ...).
    Unsupported(u8),
}

impl MatArray {
    /// Number of elements (the product of the dimensions).
    pub fn numel(&self) -> usize {
        self.dims.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// MATLAB's name of the class, for messages.
    pub fn class_name(&self) -> String {
        match &self.data {
            MatData::Numeric(_) => "numeric array".into(),
            MatData::Char(_) => "char array".into(),
            MatData::Cell(_) => "cell array".into(),
            MatData::Struct { .. } => "struct array".into(),
            MatData::Unsupported(3) => "object".into(),
            MatData::Unsupported(5) => "sparse matrix".into(),
            MatData::Unsupported(17) => "opaque object (e.g. a MATLAB string array)".into(),
            MatData::Unsupported(c) => format!("array of unsupported class {c}"),
        }
    }

    /// Field `name` of struct element `index` (0-based).
    pub fn field(&self, index: usize, name: &str) -> Option<&MatArray> {
        let MatData::Struct { fields, values } = &self.data else {
            return None;
        };
        let f = fields.iter().position(|n| n == name)?;
        values.get(index * fields.len() + f)
    }

    /// The numbers of a numeric array.
    pub fn numbers(&self) -> Option<&[f64]> {
        match &self.data {
            MatData::Numeric(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a numeric array with exactly one element.
    pub fn scalar(&self) -> Option<f64> {
        match self.numbers()? {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// A char array with at most one row as a string (MATLAB's `''` is 0x0).
    pub fn string(&self) -> Option<String> {
        match &self.data {
            MatData::Char(c) if self.dims.len() == 2 && (self.dims[0] <= 1 || c.is_empty()) => {
                Some(c.iter().collect())
            }
            _ => None,
        }
    }

    /// The rows of a 2-D char array (MATLAB pads shorter rows with spaces; trailing spaces and
    /// NULs are removed), or the strings of a cell array of char rows.
    pub fn strings(&self) -> Option<Vec<String>> {
        match &self.data {
            MatData::Char(c) if self.dims.len() == 2 && c.len() == self.numel() => {
                let (rows, cols) = (self.dims[0], self.dims[1]);
                Some(
                    (0..rows)
                        .map(|r| {
                            let s: String = (0..cols).map(|k| c[r + k * rows]).collect();
                            s.trim_end_matches([' ', '\0']).to_string()
                        })
                        .collect(),
                )
            }
            MatData::Cell(items) => items.iter().map(MatArray::string).collect(),
            _ => None,
        }
    }
}

/// Reads and parses the MAT-file at `path`.
pub fn read_mat(path: &Path) -> Result<MatFile> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    parse_mat(path, &bytes)
}

/// Parses the bytes of a level-5 MAT-file; `path` only names the file in errors, which give
/// the byte offset and the variable (or field) being read.
pub fn parse_mat(path: &Path, bytes: &[u8]) -> Result<MatFile> {
    let fail = |at: usize, what: String| DatasetError::Layout {
        path: path.to_path_buf(),
        what: format!("byte {at}: {what}"),
    };
    if bytes.len() < 128 {
        return Err(fail(
            0,
            format!(
                "{} bytes, shorter than the 128-byte MAT-file header",
                bytes.len()
            ),
        ));
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => {
            return Err(fail(
                126,
                "no IM/MI endian mark: not a level-5 MAT-file (v4 files are not supported)".into(),
            ));
        }
    };
    let version = if big {
        u16::from_be_bytes([bytes[124], bytes[125]])
    } else {
        u16::from_le_bytes([bytes[124], bytes[125]])
    };
    if version != 0x0100 {
        let what = if version == 0x0200 {
            "a v7.3 MAT-file (HDF5), not supported: re-save it with `save(..., '-v7')`".into()
        } else {
            format!("MAT-file version {version:#06x}, expected 0x0100")
        };
        return Err(fail(124, what));
    }
    let mut r = Reader {
        buf: bytes,
        pos: 128,
        base: 0,
        big,
    };
    let mut variables = Vec::new();
    while r.pos < bytes.len() {
        let (ty, payload, at) = r.element().map_err(|(o, m)| fail(o, m))?;
        let (name, array) = match ty {
            MI_MATRIX => {
                parse_matrix(payload, at + 8, big, 0, "a variable").map_err(|(o, m)| fail(o, m))?
            }
            MI_COMPRESSED => {
                let inflated = inflate(payload).map_err(|m| fail(at, m))?;
                let mut inner = Reader {
                    buf: &inflated,
                    pos: 0,
                    base: 0,
                    big,
                };
                let in_var = |(o, m): (usize, String)| {
                    fail(
                        at,
                        format!("in the compressed variable (byte {o} after inflating): {m}"),
                    )
                };
                let (ty, payload, _) = inner.element().map_err(in_var)?;
                if ty != MI_MATRIX {
                    return Err(in_var((
                        0,
                        format!("element of type {ty}, expected a matrix"),
                    )));
                }
                parse_matrix(payload, 8, big, 0, "a variable").map_err(in_var)?
            }
            other => {
                return Err(fail(
                    at,
                    format!(
                        "top-level element of type {other}, expected a matrix (14) or a compressed matrix (15)"
                    ),
                ));
            }
        };
        variables.push((name, array));
    }
    Ok(MatFile { variables })
}

fn inflate(payload: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(payload)
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot inflate the compressed variable: {e}"))?;
    if out.len() > MAX_INFLATED {
        return Err(format!(
            "the compressed variable inflates to more than {MAX_INFLATED} bytes"
        ));
    }
    Ok(out)
}

/// Offset (absolute within the file or the inflated variable) and message.
type Fail = (usize, String);

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the file (or inflated variable), for messages.
    base: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next data element: its type, its bytes and the absolute offset of its tag. Small
    /// elements hold up to 4 bytes inside the tag; others are followed by padding to 8 bytes,
    /// except compressed ones (MATLAB does not pad those). Padding cut off by the end of the
    /// buffer is tolerated.
    fn element(&mut self) -> std::result::Result<(u32, &'a [u8], usize), Fail> {
        let at = self.base + self.pos;
        let first = self.u32_at(self.pos).ok_or_else(|| {
            (
                at,
                format!(
                    "truncated element tag ({} bytes left)",
                    self.buf.len() - self.pos
                ),
            )
        })?;
        if first >> 16 != 0 {
            let (ty, n) = (first & 0xFFFF, (first >> 16) as usize);
            if n > 4 {
                return Err((at, format!("small element declares {n} bytes (at most 4)")));
            }
            let data = self
                .buf
                .get(self.pos + 4..self.pos + 8)
                .ok_or_else(|| (at, "truncated small element".to_string()))?;
            self.pos += 8;
            return Ok((ty, &data[..n], at));
        }
        let n = self
            .u32_at(self.pos + 4)
            .ok_or_else(|| (at, "truncated element tag".to_string()))? as usize;
        let start = self.pos + 8;
        let left = self.buf.len().saturating_sub(start);
        if n > left {
            return Err((
                at,
                format!("element of type {first} declares {n} bytes, only {left} remain"),
            ));
        }
        let data = &self.buf[start..start + n];
        let pad = if first == MI_COMPRESSED {
            0
        } else {
            (8 - n % 8) % 8
        };
        self.pos = (start + n + pad).min(self.buf.len());
        Ok((first, data, at))
    }
}

/// Parses the body of a miMATRIX element (`base` = its absolute offset) into its name and
/// array. `ctx` names the array for messages (`annotations(3).class`).
fn parse_matrix(
    payload: &[u8],
    base: usize,
    big: bool,
    depth: usize,
    ctx: &str,
) -> std::result::Result<(String, MatArray), Fail> {
    // MATLAB writes an empty matrix inside a cell or struct as a tag with no body.
    if payload.is_empty() {
        return Ok((
            String::new(),
            MatArray {
                dims: vec![0, 0],
                data: MatData::Numeric(Vec::new()),
            },
        ));
    }
    if depth > MAX_DEPTH {
        return Err((
            base,
            format!("{ctx}: cells or structs nested deeper than {MAX_DEPTH}"),
        ));
    }
    let mut r = Reader {
        buf: payload,
        pos: 0,
        base,
        big,
    };
    let (ty, flags, at) = r.element()?;
    if ty != MI_UINT32 || flags.len() != 8 {
        return Err((
            at,
            format!(
                "{ctx}: array flags must be 8 bytes of type 6, got {} bytes of type {ty}",
                flags.len()
            ),
        ));
    }
    let word = |b: &[u8]| {
        let b: [u8; 4] = [b[0], b[1], b[2], b[3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let flags = word(flags);
    let class = (flags & 0xFF) as u8;
    let complex = flags & 0x0800 != 0;
    if !matches!(class, MX_CELL | MX_STRUCT | MX_CHAR | 6..=15) {
        return Ok(unsupported(&mut r, class));
    }
    let (ty, raw_dims, at) = r.element()?;
    if ty != MI_INT32 || raw_dims.len() < 8 || !raw_dims.len().is_multiple_of(4) {
        return Err((
            at,
            format!(
                "{ctx}: dimensions must be at least two int32, got {} bytes of type {ty}",
                raw_dims.len()
            ),
        ));
    }
    let mut dims = Vec::with_capacity(raw_dims.len() / 4);
    for c in raw_dims.chunks_exact(4) {
        let d = word(c) as i32;
        if d < 0 {
            return Err((at, format!("{ctx}: negative dimension {d}")));
        }
        dims.push(d as usize);
    }
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| (at, format!("{ctx}: dimensions {dims:?} overflow")))?;
    let (ty, raw_name, at) = r.element()?;
    if ty != MI_INT8 && ty != MI_UINT8 {
        return Err((
            at,
            format!("{ctx}: array name must be of type 1, got type {ty}"),
        ));
    }
    let name = std::str::from_utf8(raw_name)
        .map_err(|_| (at, format!("{ctx}: the array name is not UTF-8")))?
        .to_string();
    let ctx = if depth == 0 {
        format!("variable '{name}'")
    } else {
        ctx.to_string()
    };
    let data = match class {
        MX_CELL => {
            let mut items = Vec::new();
            for i in 0..numel {
                let sub = format!("{ctx}{{{}}}", i + 1);
                items.push(child(&mut r, big, depth, &sub)?);
            }
            MatData::Cell(items)
        }
        MX_STRUCT => {
            let (ty, len, at) = r.element()?;
            if !matches!(ty, MI_INT32 | MI_UINT32) || len.len() != 4 {
                return Err((
                    at,
                    format!("{ctx}: the field name length must be one int32, got type {ty}"),
                ));
            }
            let len = word(len) as usize;
            let (ty, raw, at) = r.element()?;
            if ty != MI_INT8 && ty != MI_UINT8 {
                return Err((
                    at,
                    format!("{ctx}: field names must be of type 1, got type {ty}"),
                ));
            }
            if (len == 0 && !raw.is_empty()) || (len > 0 && !raw.len().is_multiple_of(len)) {
                return Err((
                    at,
                    format!(
                        "{ctx}: {} bytes of field names are not a multiple of the name length {len}",
                        raw.len()
                    ),
                ));
            }
            let fields = if len == 0 {
                Vec::new()
            } else {
                raw.chunks(len)
                    .map(|c| {
                        let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                        std::str::from_utf8(&c[..end])
                            .map(str::to_string)
                            .map_err(|_| (at, format!("{ctx}: a field name is not UTF-8")))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?
            };
            let mut values = Vec::new();
            for e in 0..numel {
                if fields.is_empty() {
                    break;
                }
                for f in &fields {
                    let sub = format!("{ctx}({}).{f}", e + 1);
                    values.push(child(&mut r, big, depth, &sub)?);
                }
            }
            MatData::Struct { fields, values }
        }
        MX_CHAR => {
            if numel == 0 && r.at_end() {
                MatData::Char(Vec::new())
            } else {
                let (ty, raw, at) = r.element()?;
                let chars = decode_chars(ty, raw, numel, big).ok_or_else(|| {
                    (
                        at,
                        format!(
                            "{ctx}: char data of type {ty} ({} bytes) does not hold {numel} chars",
                            raw.len()
                        ),
                    )
                })?;
                MatData::Char(chars)
            }
        }
        // The numeric classes 6..=15 (the others returned above).
        _ => {
            let (ty, raw, at) = r.element()?;
            let real = decode_numbers(ty, raw, big).ok_or_else(|| {
                (
                    at,
                    format!("{ctx}: numeric data of type {ty} ({} bytes)", raw.len()),
                )
            })?;
            if real.len() != numel {
                return Err((
                    at,
                    format!(
                        "{ctx}: {} values for dimensions {dims:?} ({numel} elements)",
                        real.len()
                    ),
                ));
            }
            if complex {
                let (ty, raw, at) = r.element()?;
                let imag = decode_numbers(ty, raw, big).map(|v| v.len());
                if imag != Some(numel) {
                    return Err((
                        at,
                        format!("{ctx}: the imaginary part does not hold {numel} values"),
                    ));
                }
            }
            MatData::Numeric(real)
        }
    };
    Ok((name, MatArray { dims, data }))
}

/// An array of a class this reader does not decode, with its name and dimensions where they
/// can be read: objects and sparse matrices have dimensions then a name, opaque objects
/// (class 17) a name right after the flags. Its contents are skipped, so a file that also
/// holds such a variable still reads.
fn unsupported(r: &mut Reader<'_>, class: u8) -> (String, MatArray) {
    let mut dims = vec![1, 1];
    let mut name = String::new();
    while let Ok((ty, raw, _)) = r.element() {
        match ty {
            MI_INT32 if name.is_empty() && raw.len() >= 8 => {
                dims = raw
                    .chunks_exact(4)
                    .map(|c| {
                        let b = [c[0], c[1], c[2], c[3]];
                        (if r.big {
                            i32::from_be_bytes(b)
                        } else {
                            i32::from_le_bytes(b)
                        })
                        .max(0) as usize
                    })
                    .collect();
            }
            MI_INT8 | MI_UINT8 => {
                name = String::from_utf8_lossy(raw).into_owned();
                break;
            }
            _ => break,
        }
    }
    (
        name,
        MatArray {
            dims,
            data: MatData::Unsupported(class),
        },
    )
}

/// The next element of `r` as a nested matrix (a cell item or struct field).
fn child(
    r: &mut Reader<'_>,
    big: bool,
    depth: usize,
    ctx: &str,
) -> std::result::Result<MatArray, Fail> {
    let (ty, payload, at) = r.element()?;
    if ty != MI_MATRIX {
        return Err((
            at,
            format!("{ctx}: element of type {ty}, expected a matrix (14)"),
        ));
    }
    Ok(parse_matrix(payload, at + 8, big, depth + 1, ctx)?.1)
}

fn decode_numbers(ty: u32, raw: &[u8], big: bool) -> Option<Vec<f64>> {
    fn each<const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> f64) -> Option<Vec<f64>> {
        if !raw.len().is_multiple_of(N) {
            return None;
        }
        Some(
            raw.chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunk of N bytes")))
                .collect(),
        )
    }
    macro_rules! num {
        ($t:ty, $n:literal) => {
            each::<$n>(raw, |b| {
                (if big {
                    <$t>::from_be_bytes(b)
                } else {
                    <$t>::from_le_bytes(b)
                }) as f64
            })
        };
    }
    match ty {
        MI_INT8 => num!(i8, 1),
        MI_UINT8 => num!(u8, 1),
        MI_INT16 => num!(i16, 2),
        MI_UINT16 => num!(u16, 2),
        MI_INT32 => num!(i32, 4),
        MI_UINT32 => num!(u32, 4),
        MI_SINGLE => num!(f32, 4),
        MI_DOUBLE => num!(f64, 8),
        MI_INT64 => num!(i64, 8),
        MI_UINT64 => num!(u64, 8),
        _ => None,
    }
}

fn decode_chars(ty: u32, raw: &[u8], numel: usize, big: bool) -> Option<Vec<char>> {
    let chars: Vec<char> = match ty {
        MI_UINT8 | MI_INT8 | MI_UTF8 => match std::str::from_utf8(raw) {
            Ok(s) if s.chars().count() == numel => s.chars().collect(),
            // Not UTF-8 text of the right length: one byte per char (Latin-1).
            _ => raw.iter().map(|&b| char::from(b)).collect(),
        },
        MI_UINT16 | MI_INT16 | MI_UTF16 => decode_numbers(MI_UINT16, raw, big)?
            .into_iter()
            .map(|u| char::from_u32(u as u32).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        MI_UINT32 | MI_INT32 | MI_UTF32 => decode_numbers(MI_UINT32, raw, big)?
            .into_iter()
            .map(|u| char::from_u32(u as u32).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        _ => return None,
    };
    (chars.len() == numel).then_some(chars)
}
