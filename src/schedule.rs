//! The warm-up schedule of the sparsity regularisers.

/// How strongly a sparsity regulariser counts at each training step:
/// `λ(t) = λ̂ · clip((t − start) / (end − start), 0, 1)`.
///
/// Off before `start`, ramping linearly to `λ̂` at `end`, constant after: the units first fit
/// the data, then are pushed to discrete weights (Madsen & Johansen 2020).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "experiments", derive(serde::Serialize, serde::Deserialize))]
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
}
