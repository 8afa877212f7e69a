//! Learning-rate schedules of the reproduced systems, as pure functions of the step.

/// Linear warmup then cosine decay, evaluated per optimizer step (SAIG's
/// `WarmupCosineSchedule`): the multiplier is `step / warmup` during warmup, then
/// `max(floor, 0.5 (1 + cos(pi * progress)))` with `progress = (step - warmup) / (total - warmup)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate, reached at the end of warmup.
    pub base_lr: f64,
    /// Optimizer steps of the linear ramp from 0 to `base_lr`.
    pub warmup_steps: usize,
    /// Optimizer steps of the whole run, warmup included; the cosine reaches its floor there.
    pub total_steps: usize,
    /// Lower bound of the multiplier (SAIG: 1e-6).
    pub floor: f64,
}

impl WarmupCosine {
    /// Warmup then cosine decay from `base_lr`, the multiplier floored at SAIG's 1e-6.
    pub fn new(base_lr: f64, warmup_steps: usize, total_steps: usize) -> Self {
        WarmupCosine {
            base_lr,
            warmup_steps,
            total_steps,
            floor: 1e-6,
        }
    }

    /// The learning rate at optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        let m = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.base_lr * m.max(self.floor)
    }
}

/// Step decay at fixed epochs (PyTorch's `MultiStepLR`; CGD: milestones at 60% and 80% of
/// the epochs, gamma 0.1; Smooth-AP: [40, 70], gamma 0.3).
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStep {
    /// Learning rate before the first milestone.
    pub base_lr: f64,
    /// Epochs (0-based) at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Decay factor applied at each milestone (PyTorch's default: 0.1).
    pub gamma: f64,
}

impl MultiStep {
    /// Starts at `base_lr` and multiplies it by `gamma` at each of `milestones`.
    pub fn new(base_lr: f64, milestones: Vec<usize>, gamma: f64) -> Self {
        MultiStep {
            base_lr,
            milestones,
            gamma,
        }
    }

    /// CGD's schedule for `epochs` epochs: milestones `[floor(0.6 E), floor(0.8 E)]`, gamma 0.1.
    pub fn cgd(base_lr: f64, epochs: usize) -> Self {
        MultiStep::new(base_lr, vec![epochs * 6 / 10, epochs * 8 / 10], 0.1)
    }

    /// The learning rate during epoch `epoch` (0-based): decayed once per milestone reached.
    pub fn lr(&self, epoch: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| epoch >= m).count();
        self.base_lr * self.gamma.powi(passed as i32)
    }
}
