//! Watching each step's losses for the ones that turn NaN or infinite: read every step where
//! the host holds the tensors anyway (the CPU backends), accumulated on the device and read at
//! evaluations elsewhere, so that a GPU population runs ahead of the host.

use burn::tensor::{Device, Tensor};

use burn_nalu::backend;

/// Where the losses of a population's steps are watched.
// One per trainer, made once: the size of the device variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Watch {
    /// Read on the host at every step.
    Host,
    /// Watched on the device: per member, the first step whose loss was not finite (`+∞`
    /// while none) and that loss.
    Device { first: Tensor<1>, loss: Tensor<1> },
}

impl Watch {
    /// The watch for a population of `members` trained on `device`.
    pub(super) fn new(device: &Device, members: usize) -> Self {
        if backend::on_host(device) {
            return Self::Host;
        }
        Self::Device {
            first: Tensor::full([members], f64::INFINITY, device),
            loss: Tensor::zeros([members], device),
        }
    }

    /// Takes step `step`'s losses (`[members]`); on the host, returns the members whose loss is
    /// not finite, with it.
    pub(super) fn observe(&mut self, step: usize, losses: Tensor<1>) -> Vec<(usize, f64)> {
        match self {
            Self::Host => {
                let host = losses.into_data().convert::<f64>();
                let host = host.try_into_vec::<f64>().expect("float losses");
                let bad = host.into_iter().enumerate().filter(|(_, l)| !l.is_finite());
                bad.collect()
            }
            Self::Device { first, loss } => {
                let bad = losses.clone().is_nan().bool_or(losses.clone().is_inf());
                let fresh = bad.bool_and(first.clone().is_inf());
                *first = first.clone().mask_fill(fresh.clone(), step as f64);
                *loss = loss.clone().mask_where(fresh, losses);
                Vec::new()
            }
        }
    }

    /// The members the device saw diverge since the population started, with the step and
    /// the loss (nothing on the host, which reported them as they came).
    pub(super) fn diverged(&self) -> Vec<(usize, usize, f64)> {
        let Self::Device { first, loss } = self else {
            return Vec::new();
        };
        let read = |t: &Tensor<1>| {
            let data = t.clone().into_data().convert::<f64>();
            data.try_into_vec::<f64>().expect("float tensor")
        };
        let (steps, losses) = (read(first), read(loss));
        let seen = steps.into_iter().zip(losses).enumerate();
        seen.filter(|(_, (s, _))| s.is_finite())
            .map(|(k, (s, l))| (k, s as usize, l))
            .collect()
    }

    /// Keeps the members where `keep` is set.
    pub(super) fn retain(&mut self, keep: &[bool]) {
        let Self::Device { first, loss } = self else {
            return;
        };
        let index: Vec<i64> = (0..keep.len() as i64)
            .filter(|&k| keep[k as usize])
            .collect();
        let idx = burn::tensor::TensorData::new(index.clone(), [index.len()]);
        let idx = Tensor::<1, burn::tensor::Int>::from_data(idx, &first.device());
        *first = first.clone().select(0, idx.clone());
        *loss = loss.clone().select(0, idx);
    }
}
