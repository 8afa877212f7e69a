//! Which heads a WGOL network has and how they are wired (spec s. 2.3).

use std::fmt;
use std::str::FromStr;

use crate::LocalizationError;

/// The original's `--mode`: which heads exist and what feeds them.
///
/// | mode | heads | after `sa_start` (training) and at test |
/// |---|---|---|
/// | `spa` | cls | cls(f5); localise with CAM or the structure map (SCG) |
/// | `spa+sa` | cls, sa | cls(SA(f5, E)) |
/// | `sos` | cls, sos | cls(f5), sos(f5) from `sos_start` |
/// | `sos+sa_v2` | cls, sos, sa | cls(f5), sos(SA(f5, E)) |
/// | `sos+sa_v3` | cls, sos, sa | a = SA(f5, E); cls(a), sos(a) (the paper's final model) |
///
/// `sos+sa_v1` is a stub (`pass`) in the original and is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WgolMode {
    /// SPA: classification only; localisation from CAM or the structure map.
    Spa,
    /// SPA with self-attention in front of the classifier.
    SpaSa,
    /// SOS: a class-agnostic map trained on structure-map pseudo-masks.
    Sos,
    /// SOS with self-attention in front of the SOS head only.
    SosSaV2,
    /// SOS with self-attention in front of both heads.
    SosSaV3,
}

impl WgolMode {
    /// Every mode, in the table's order.
    pub const ALL: [WgolMode; 5] = [
        WgolMode::Spa,
        WgolMode::SpaSa,
        WgolMode::Sos,
        WgolMode::SosSaV2,
        WgolMode::SosSaV3,
    ];

    /// The name the original's `--mode` flag takes.
    pub fn name(self) -> &'static str {
        match self {
            WgolMode::Spa => "spa",
            WgolMode::SpaSa => "spa+sa",
            WgolMode::Sos => "sos",
            WgolMode::SosSaV2 => "sos+sa_v2",
            WgolMode::SosSaV3 => "sos+sa_v3",
        }
    }

    /// Whether the network has the class-agnostic SOS head.
    pub fn has_sos(self) -> bool {
        matches!(self, WgolMode::Sos | WgolMode::SosSaV2 | WgolMode::SosSaV3)
    }

    /// Whether the network has the structure-aware self-attention.
    pub fn has_sa(self) -> bool {
        matches!(
            self,
            WgolMode::SpaSa | WgolMode::SosSaV2 | WgolMode::SosSaV3
        )
    }
}

impl fmt::Display for WgolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WgolMode {
    type Err = LocalizationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WgolMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| LocalizationError::UnknownMode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_heads_follow_the_table() {
        for m in WgolMode::ALL {
            assert_eq!(m.name().parse::<WgolMode>().unwrap(), m);
        }
        let heads: Vec<_> = WgolMode::ALL
            .iter()
            .map(|m| (m.has_sos(), m.has_sa()))
            .collect();
        assert_eq!(
            heads,
            vec![
                (false, false),
                (false, true),
                (true, false),
                (true, true),
                (true, true)
            ]
        );
        let err = "sos+sa_v1".parse::<WgolMode>().unwrap_err().to_string();
        assert!(
            err.contains("sos+sa_v1") && err.contains("sos+sa_v3"),
            "{err}"
        );
    }
}
