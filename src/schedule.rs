//! The schedules of the penalties added to the loss: the sparsity regularisers' warm-up, and
//! the growing L1 penalty of Heim et al.

/// How strongly a sparsity regulariser counts at each training step:
/// `λ(t) = λ̂ · clip((t − start) / (end − start), 0, 1)`.
///
/// Off before `start`, ramping linearly to `λ̂` at `end`, constant after: the units first fit
/// the data, then are pushed to discrete weights (Madsen & Johansen 2020).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegularizerSchedule {
    /// `λ̂`, the final weight.
    pub lambda: f64,
    /// The step at which the ramp starts.
    pub start: usize,
    /// The step at which the ramp reaches `λ̂`.
    pub end: usize,
}

impl RegularizerSchedule {
    /// `λ(t)` at training step `step`.
    pub fn weight(&self, step: usize) -> f64 {
        if self.end <= self.start {
            return if step >= self.start { self.lambda } else { 0.0 };
        }
        let ramp = (step as f64 - self.start as f64) / (self.end - self.start) as f64;
        self.lambda * ramp.clamp(0.0, 1.0)
    }
}

/// The weight of an L1 penalty on every parameter, `β(t)·Σ|p|`, growing geometrically:
/// `β(t) = min(start · growth^⌊t / every⌋, end)` (Heim et al. 2020's schedule, which Mistry et
/// al. 2022 use for the RealNPU: 1e-9 to 1e-7, ×10 every 10,000 steps).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct L1Schedule {
    /// `β` from step 0.
    pub start: f64,
    /// The largest `β`.
    pub end: f64,
    /// Steps between growths.
    pub every: usize,
    /// The factor of each growth.
    pub growth: f64,
}

impl L1Schedule {
    /// `β(t)` at training step `step`.
    pub fn weight(&self, step: usize) -> f64 {
        let grown = (step / self.every.max(1)).min(i32::MAX as usize) as i32;
        (self.start * self.growth.powi(grown)).min(self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_linearly_between_start_and_end() {
        let s = RegularizerSchedule {
            lambda: 10.0,
            start: 100,
            end: 300,
        };
        let got: Vec<f64> = [0, 100, 150, 200, 300, 1000]
            .iter()
            .map(|&t| s.weight(t))
            .collect();
        assert_eq!(got, [0.0, 0.0, 2.5, 5.0, 10.0, 10.0]);
    }

    #[test]
    fn a_step_schedule_when_start_equals_end() {
        let s = RegularizerSchedule {
            lambda: 1.0,
            start: 5,
            end: 5,
        };
        assert_eq!((s.weight(4), s.weight(5)), (0.0, 1.0));
    }

    #[test]
    fn l1_grows_tenfold_every_period_up_to_its_end() {
        let s = L1Schedule {
            start: 1e-9,
            end: 1e-7,
            every: 10_000,
            growth: 10.0,
        };
        let got: Vec<f64> = [0, 9_999, 10_000, 19_999, 20_000, 90_000]
            .iter()
            .map(|&t| s.weight(t))
            .collect();
        // 1e-9·10 rounds to 1.0000000000000001e-8 in f64; one multiplication's rounding.
        let want = [1e-9, 1e-9, 1e-8, 1e-8, 1e-7, 1e-7];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 2.0 * f64::EPSILON * w, "{got:?}");
        }
    }
}
