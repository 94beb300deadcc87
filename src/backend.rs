//! Which devices take this crate's fast paths: the one place that decides.
//!
//! The fused layer kernels and the host-memory optimizer update run on the flex backend, in f32
//! and f64; every other backend and float type takes the generic path, a composition of Burn
//! ops that every backend supports.

use burn::tensor::Device;
#[cfg(feature = "flex")]
use burn::tensor::{DType, Tensor};

/// Whether `device` runs this crate's fused kernels (the flex backend, with the `flex`
/// feature). Their results match the generic path's to rounding; on flex they are also the
/// same bits at every SIMD level, since they fix their order of operations.
pub fn has_fused_kernels(device: &Device) -> bool {
    on_flex(device)
}

/// Whether `x` takes the fused kernels: on a device that has them, in f32 or f64.
#[cfg(feature = "flex")]
pub(crate) fn takes_fused_path<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && on_flex(&x.device())
}

/// Whether a tensor on `device` lives in host memory that the crate's loops can read directly.
pub fn on_host(device: &Device) -> bool {
    on_flex(device)
}

#[cfg(feature = "flex")]
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(not(feature = "flex"))]
fn on_flex(_device: &Device) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_in_f32_and_f64_takes_the_fused_path_other_types_and_backends_do_not() {
        #[cfg(feature = "flex")]
        {
            let x = Tensor::<2>::zeros([64, 100], &Device::flex());
            assert!(has_fused_kernels(&Device::flex()));
            assert!(takes_fused_path(&x));
            assert!(takes_fused_path(&x.clone().cast(DType::F64)));
            assert!(!takes_fused_path(&x.cast(DType::F16)));
        }
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        {
            assert!(!has_fused_kernels(&Device::ndarray()));
            #[cfg(feature = "flex")]
            {
                let on_ndarray = Tensor::<2>::zeros([64, 100], &Device::ndarray());
                assert!(!takes_fused_path(&on_ndarray));
            }
        }
    }
}
