use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How two embeddings are compared. Every metric in this crate ranks by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Similarity {
    /// Cosine similarity: the inner product of the L2-normalised vectors (higher is closer).
    #[default]
    Cosine,
    /// Raw inner product (higher is closer); equals cosine on unit vectors.
    InnerProduct,
    /// Squared Euclidean distance (lower is closer). Ranks like Euclidean distance.
    SquaredL2,
}

impl Similarity {
    /// Whether a larger reported value means a closer neighbour.
    pub fn higher_is_closer(self) -> bool {
        !matches!(self, Similarity::SquaredL2)
    }
}

impl fmt::Display for Similarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Similarity::Cosine => "cosine",
            Similarity::InnerProduct => "ip",
            Similarity::SquaredL2 => "l2",
        })
    }
}

impl FromStr for Similarity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Similarity::Cosine),
            "ip" | "inner" | "inner_product" | "dot" => Ok(Similarity::InnerProduct),
            "l2" | "sql2" | "squared_l2" | "euclidean" => Ok(Similarity::SquaredL2),
            other => Err(Error::InvalidArgument(format!(
                "unknown metric '{other}' (expected cosine, ip or l2)"
            ))),
        }
    }
}
