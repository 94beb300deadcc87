//! The sNMU (Mistry, Farrahi & Hare's stochastic NMU) on one member's host slices, in its
//! training form: the forward and backward of [`HostLayer::Snmu`](super::HostLayer::Snmu). Its
//! regulariser and clamp are the NMU's.

use burn::tensor::{Distribution, Element, Shape, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::ops::FastFloat;
use crate::ops::fused::{member_nmu, member_nmu_backward};

/// An sNMU's sizes and noise range: `z = NMU(x ⊙ n) / NMU(n)` with `n ~ U[noise_low,
/// noise_high)` per input element, `W` clamped to [0, 1], the NMU's sparsity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snmu {
    pub d_in: usize,
    pub d_out: usize,
    pub noise_low: f64,
    pub noise_high: f64,
}

impl Snmu {
    /// `(z, cache)` for `x: [rows, d_in]` with the noise drawn from a generator seeded with
    /// `seed`: the values `crate::Snmu` draws for one member inside
    /// `ops::init::with_member_seeds` (`TensorData::random` of `StdRng::seed_from_u64(seed)`),
    /// so that a run takes the noise of the generic step. The cache is `[n, x ⊙ n, NMU(x ⊙ n),
    /// NMU(n)]`, which the backward reads.
    pub(super) fn forward<F: FastFloat + Element>(
        self,
        x: &[F],
        w: &[F],
        seed: u64,
    ) -> (Vec<F>, Vec<F>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let noise = self.noise::<F>(x.len() / d_in, seed);
        let noisy: Vec<F> = x.iter().zip(&noise).map(|(&x, &n)| x * n).collect();
        let (u, v) = (
            member_nmu(&noisy, w, d_in, d_out),
            member_nmu(&noise, w, d_in, d_out),
        );
        let z = u.iter().zip(&v).map(|(&u, &v)| u / v).collect();
        let mut cache = noise;
        cache.extend_from_slice(&noisy);
        cache.extend_from_slice(&u);
        cache.extend_from_slice(&v);
        (z, cache)
    }

    /// `(dx, [dW])` for the output gradient `dz`, from the forward's cache, with Burn's backward
    /// of the quotient (`du = dz·(1/v)`, `dv = dz·(−u/v²)`) and of `x ⊙ n` (`dx = d(x ⊙ n)·n`);
    /// the noise takes no gradient.
    pub(super) fn backward<F: FastFloat>(
        self,
        (w, dz): (&[F], &[F]),
        cache: &[F],
        need_dx: bool,
    ) -> (Vec<F>, Vec<Vec<F>>) {
        let (d_in, d_out) = (self.d_in, self.d_out);
        let rows = dz.len() / d_out;
        let (noise, rest) = cache.split_at(rows * d_in);
        let (noisy, rest) = rest.split_at(rows * d_in);
        let (u, v) = rest.split_at(rows * d_out);
        let du: Vec<F> = dz.iter().zip(v).map(|(&g, &v)| g * v.recip()).collect();
        let dv: Vec<F> = (dz.iter().zip(u).zip(v))
            .map(|((&g, &u), &v)| g * (-u / (v * v)))
            .collect();
        let (d_noisy, mut dw) = member_nmu_backward((noisy, w, &du), d_in, d_out, need_dx);
        let (_, dw_noise) = member_nmu_backward((noise, w, &dv), d_in, d_out, false);
        dw.iter_mut().zip(dw_noise).for_each(|(a, b)| *a = *a + b);
        let dx = d_noisy.iter().zip(noise).map(|(&g, &n)| g * n).collect();
        (dx, vec![dw])
    }

    /// `rows·d_in` draws from `U[noise_low, noise_high)`, as `ops::init::member_random` makes
    /// one member's block.
    fn noise<F: Element>(self, rows: usize, seed: u64) -> Vec<F> {
        let range = Distribution::Uniform(self.noise_low, self.noise_high);
        let shape = Shape::new([rows, self.d_in]);
        let mut rng = StdRng::seed_from_u64(seed);
        (TensorData::random::<F, _, _>(shape, range, &mut rng).try_into_vec::<F>())
            .expect("the element type drawn")
    }
}
