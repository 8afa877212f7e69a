//! A small level-5 MAT-file writer for the tests, written from MathWorks' published format
//! description: it produces what MATLAB's `save` does (char data as UTF-16 units, names of at
//! most 4 bytes in the small element format, empty struct fields as body-less matrices,
//! optional zlib compression per variable), in either byte order.

#![allow(dead_code)]

use std::io::Write;

/// An array to write.
#[derive(Debug, Clone)]
pub enum M {
    /// Class double, stored as miDOUBLE.
    Double(Vec<usize>, Vec<f64>),
    /// Class double, stored compactly as miUINT8 (MATLAB does this for small integers).
    DoubleAsU8(Vec<usize>, Vec<u8>),
    /// Class int32 (stored as miINT32).
    Int32(Vec<usize>, Vec<i32>),
    /// Class char, UTF-16 units in column-major order.
    Char(Vec<usize>, Vec<u16>),
    Cell(Vec<usize>, Vec<M>),
    /// Field names and element-major values (`values[e * fields + f]`).
    Struct(Vec<usize>, Vec<String>, Vec<M>),
    /// A matrix element with no body (MATLAB's empty struct field).
    Empty,
}

impl M {
    pub fn scalar(v: f64) -> M {
        M::Double(vec![1, 1], vec![v])
    }

    pub fn str(s: &str) -> M {
        let u: Vec<u16> = s.encode_utf16().collect();
        M::Char(vec![1, u.len()], u)
    }

    /// A char matrix, one row per string, shorter rows padded with spaces.
    pub fn char_rows(rows: &[&str]) -> M {
        let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut data = vec![b' ' as u16; rows.len() * cols];
        for (r, s) in rows.iter().enumerate() {
            for (c, b) in s.bytes().enumerate() {
                data[r + c * rows.len()] = b as u16;
            }
        }
        M::Char(vec![rows.len(), cols], data)
    }

    pub fn column(v: &[f64]) -> M {
        M::Double(vec![v.len(), 1], v.to_vec())
    }

    /// A 1xN struct array from `(field, value)` lists, one per element.
    pub fn structs(elements: Vec<Vec<(&str, M)>>) -> M {
        let fields: Vec<String> = elements
            .first()
            .map(|e| e.iter().map(|(f, _)| f.to_string()).collect())
            .unwrap_or_default();
        let n = elements.len();
        let values = elements
            .into_iter()
            .flat_map(|e| e.into_iter().map(|(_, v)| v))
            .collect();
        M::Struct(vec![1, n], fields, values)
    }

    pub fn cell(items: Vec<M>) -> M {
        M::Cell(vec![1, items.len()], items)
    }
}

struct W {
    big: bool,
}

impl W {
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn element(&self, out: &mut Vec<u8>, ty: u32, data: &[u8]) {
        if data.len() <= 4 && ty != 14 && !data.is_empty() {
            out.extend(self.u32(((data.len() as u32) << 16) | ty));
            let mut d = data.to_vec();
            d.resize(4, 0);
            out.extend(d);
        } else {
            out.extend(self.u32(ty));
            out.extend(self.u32(data.len() as u32));
            out.extend(data);
            out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
        }
    }

    fn matrix(&self, name: &str, m: &M) -> Vec<u8> {
        let class = match m {
            M::Double(..) | M::DoubleAsU8(..) => 6,
            M::Int32(..) => 12,
            M::Char(..) => 4,
            M::Cell(..) => 1,
            M::Struct(..) => 2,
            M::Empty => {
                let mut out = Vec::new();
                self.element(&mut out, 14, &[]);
                return out;
            }
        };
        let dims = match m {
            M::Double(d, _)
            | M::DoubleAsU8(d, _)
            | M::Int32(d, _)
            | M::Char(d, _)
            | M::Cell(d, _)
            | M::Struct(d, _, _) => d.clone(),
            M::Empty => unreachable!(),
        };
        let mut body = Vec::new();
        let mut flags = Vec::new();
        flags.extend(self.u32(class));
        flags.extend(self.u32(0));
        self.element(&mut body, 6, &flags);
        let dim_bytes: Vec<u8> = dims.iter().flat_map(|&d| self.u32(d as u32)).collect();
        self.element(&mut body, 5, &dim_bytes);
        self.element(&mut body, 1, name.as_bytes());
        match m {
            M::Double(_, v) => {
                let b: Vec<u8> = v
                    .iter()
                    .flat_map(|x| {
                        if self.big {
                            x.to_be_bytes()
                        } else {
                            x.to_le_bytes()
                        }
                    })
                    .collect();
                self.element(&mut body, 9, &b);
            }
            M::DoubleAsU8(_, v) => self.element(&mut body, 2, v),
            M::Int32(_, v) => {
                let b: Vec<u8> = v.iter().flat_map(|&x| self.u32(x as u32)).collect();
                self.element(&mut body, 5, &b);
            }
            M::Char(_, v) => {
                let b: Vec<u8> = v
                    .iter()
                    .flat_map(|x| {
                        if self.big {
                            x.to_be_bytes()
                        } else {
                            x.to_le_bytes()
                        }
                    })
                    .collect();
                self.element(&mut body, 4, &b);
            }
            M::Cell(_, items) => {
                for it in items {
                    body.extend(self.matrix("", it));
                }
            }
            M::Struct(_, fields, values) => {
                let len = fields
                    .iter()
                    .map(|f| f.len() + 1)
                    .max()
                    .unwrap_or(1)
                    .max(32);
                self.element(&mut body, 5, &self.u32(len as u32));
                let mut names = vec![0u8; len * fields.len()];
                for (k, f) in fields.iter().enumerate() {
                    names[k * len..k * len + f.len()].copy_from_slice(f.as_bytes());
                }
                self.element(&mut body, 1, &names);
                for v in values {
                    body.extend(self.matrix("", v));
                }
            }
            M::Empty => unreachable!(),
        }
        let mut out = Vec::new();
        self.element(&mut out, 14, &body);
        out
    }
}

/// The bytes of a MAT-file holding `vars`.
pub fn mat_file(vars: &[(&str, M)], big: bool, compress: bool) -> Vec<u8> {
    let w = W { big };
    let mut out = format!("MATLAB 5.0 MAT-file, written by metron's tests{:116}", "").into_bytes()
        [..116]
        .to_vec();
    out.extend([0u8; 8]);
    if big {
        out.extend([0x01, 0x00, b'M', b'I']);
    } else {
        out.extend([0x00, 0x01, b'I', b'M']);
    }
    for (name, m) in vars {
        let matrix = w.matrix(name, m);
        if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(&matrix).unwrap();
            let z = z.finish().unwrap();
            out.extend(w.u32(15));
            out.extend(w.u32(z.len() as u32));
            out.extend(z);
        } else {
            out.extend(matrix);
        }
    }
    out
}
