//! Run-time backend selection from a string such as `"cpu"`, `"wgpu"`, `"tch:cuda:0"`.
//!
//! Model code in metron is written once against `burn::tensor::Device`; which backends exist in
//! a binary is decided by cargo features (`flex`, `wgpu`, `tch`, `cuda`), and which one runs is
//! decided here, from a `--device` flag. Asking for a backend that was not compiled in is an
//! error that names the cargo feature to turn on, rather than a silent fallback to the CPU.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::{Error, Result};

/// A parsed device string: which backend, and which accelerator index where that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    /// Burn's pure-Rust CPU backend (`"cpu"` or `"flex"`), feature `flex`.
    Flex,
    /// The wgpu backend on its default adapter (`"wgpu"`), feature `wgpu`.
    Wgpu,
    /// LibTorch on the CPU (`"tch"` or `"tch:cpu"`), feature `tch`.
    TchCpu,
    /// LibTorch on a CUDA device (`"tch:cuda:N"`), feature `tch`.
    TchCuda(usize),
    /// CubeCL's CUDA backend (`"cuda"` = `"cuda:0"`, `"cuda:N"`), feature `cuda`.
    Cuda(usize),
}

/// The device strings accepted by [`parse_device`], for help texts.
pub const DEVICE_HELP: &str = "cpu | flex | wgpu | tch | tch:cuda:N | cuda:N";

impl DeviceSpec {
    /// The cargo feature of the `metron` package that compiles this backend in.
    pub fn feature(&self) -> &'static str {
        match self {
            DeviceSpec::Flex => "flex",
            DeviceSpec::Wgpu => "wgpu",
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => "tch",
            DeviceSpec::Cuda(_) => "cuda",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn is_compiled_in(&self) -> bool {
        match self {
            DeviceSpec::Flex => cfg!(feature = "flex"),
            DeviceSpec::Wgpu => cfg!(feature = "wgpu"),
            DeviceSpec::TchCpu | DeviceSpec::TchCuda(_) => cfg!(feature = "tch"),
            DeviceSpec::Cuda(_) => cfg!(feature = "cuda"),
        }
    }

    /// Opens the Burn device, or explains which cargo feature is missing.
    pub fn to_device(&self) -> Result<Device> {
        if !self.is_compiled_in() {
            return Err(Error::Device {
                spec: self.to_string(),
                why: format!(
                    "this binary was built without the '{0}' backend; rebuild with \
                     `--features {0}`",
                    self.feature()
                ),
            });
        }
        Ok(self.open())
    }

    // Each arm exists only when its backend is compiled in; `to_device` has already checked.
    #[allow(unreachable_code, unused_variables, deprecated)]
    fn open(&self) -> Device {
        match *self {
            #[cfg(feature = "flex")]
            DeviceSpec::Flex => Device::flex(),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCuda(i) => Device::libtorch_cuda(i),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => Device::cuda(i),
            #[allow(unreachable_patterns)]
            _ => unreachable!("to_device checks is_compiled_in first"),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Flex => write!(f, "cpu"),
            DeviceSpec::Wgpu => write!(f, "wgpu"),
            DeviceSpec::TchCpu => write!(f, "tch"),
            DeviceSpec::TchCuda(i) => write!(f, "tch:cuda:{i}"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let bad = |why: &str| Error::Device {
            spec: s.to_string(),
            why: format!("{why} (expected one of: {DEVICE_HELP})"),
        };
        let index = |i: &str| {
            i.parse::<usize>()
                .map_err(|_| bad("the device index must be a non-negative integer"))
        };
        let parts: Vec<&str> = lower.split(':').collect();
        match parts.as_slice() {
            ["cpu"] | ["flex"] => Ok(DeviceSpec::Flex),
            ["wgpu"] => Ok(DeviceSpec::Wgpu),
            ["tch"] | ["tch", "cpu"] => Ok(DeviceSpec::TchCpu),
            ["tch", "cuda"] => Ok(DeviceSpec::TchCuda(0)),
            ["tch", "cuda", i] => Ok(DeviceSpec::TchCuda(index(i)?)),
            ["cuda"] => Ok(DeviceSpec::Cuda(0)),
            ["cuda", i] => Ok(DeviceSpec::Cuda(index(i)?)),
            _ => Err(bad("unknown device")),
        }
    }
}

/// Parses a `--device` string and opens the device: `parse_device("cpu")?` is the flex CPU
/// backend. Fails with a message naming the cargo feature if the backend was not compiled in.
pub fn parse_device(s: &str) -> Result<Device> {
    s.parse::<DeviceSpec>()?.to_device()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let cases = [
            ("cpu", DeviceSpec::Flex),
            ("flex", DeviceSpec::Flex),
            (" CPU ", DeviceSpec::Flex),
            ("wgpu", DeviceSpec::Wgpu),
            ("tch", DeviceSpec::TchCpu),
            ("tch:cpu", DeviceSpec::TchCpu),
            ("tch:cuda", DeviceSpec::TchCuda(0)),
            ("tch:cuda:1", DeviceSpec::TchCuda(1)),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), want, "{s}");
        }
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            DeviceSpec::Flex,
            DeviceSpec::Wgpu,
            DeviceSpec::TchCpu,
            DeviceSpec::TchCuda(2),
            DeviceSpec::Cuda(1),
        ] {
            assert_eq!(spec.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn rejects_unknown_and_bad_index() {
        for s in ["gpu", "cuda:x", "cuda:-1", "tch:cuda:0:1", ""] {
            let err = s.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("expected one of"), "{s}: {err}");
        }
    }

    #[test]
    fn missing_backend_names_the_feature() {
        for spec in [
            DeviceSpec::Wgpu,
            DeviceSpec::TchCpu,
            DeviceSpec::Cuda(0),
            DeviceSpec::Flex,
        ] {
            if spec.is_compiled_in() {
                continue;
            }
            let err = spec.to_device().unwrap_err().to_string();
            assert!(
                err.contains(&format!("--features {}", spec.feature())),
                "{err}"
            );
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn cpu_device_runs_a_tensor_op() {
        use burn::tensor::{Tensor, TensorData};
        let device = parse_device("cpu").unwrap();
        let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [3]), &device);
        let s: Vec<f32> = t.sum().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(s, vec![6.0]);
    }
}
