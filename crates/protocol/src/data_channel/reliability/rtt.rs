//! Round-trip time estimation and the retransmission timeout.
//!
//! The plugin (`src/datachannel/streaming.go`,
//! `CalculateRetransmissionTimeout`, constants in `src/config/config.go`)
//! smooths like TCP (RFC 6298) with these constants:
//!
//! ```text
//! RTTVAR <- 3/4 * RTTVAR + 1/4 * |SRTT - sample|     (uses the old SRTT)
//! SRTT   <- 7/8 * SRTT   + 1/8 * sample
//! RTO    <- min(SRTT + max(10 ms, 4 * RTTVAR), 1 s)
//! ```
//!
//! starting from SRTT = 100 ms, RTTVAR = 0 and RTO = 200 ms. The arithmetic
//! is done in `f64` nanoseconds and truncated to whole nanoseconds, as the
//! plugin's conversion to a Go `time.Duration` does.

use std::time::Duration;

/// SRTT before the first sample.
pub const INITIAL_RTT: Duration = Duration::from_millis(100);
/// RTO before the first sample.
pub const INITIAL_RTO: Duration = Duration::from_millis(200);
/// Lower bound of the variance term of the RTO.
pub const CLOCK_GRANULARITY: Duration = Duration::from_millis(10);
/// Upper bound of the RTO.
pub const MAX_RTO: Duration = Duration::from_secs(1);
/// Weight of a new sample in SRTT.
pub const RTT_GAIN: f64 = 1.0 / 8.0;
/// Weight of a new deviation in RTTVAR.
pub const RTTVAR_GAIN: f64 = 1.0 / 4.0;

/// Smoothed round-trip time, its variation, and the resulting timeout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttEstimator {
    srtt_nanos: f64,
    rttvar_nanos: f64,
    rto: Duration,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl RttEstimator {
    /// The estimator before any sample.
    pub fn new() -> Self {
        Self {
            srtt_nanos: nanos(INITIAL_RTT),
            rttvar_nanos: 0.0,
            rto: INITIAL_RTO,
        }
    }

    /// Folds in one round-trip sample and recomputes the timeout.
    pub fn observe(&mut self, sample: Duration) {
        let sample = nanos(sample);
        self.rttvar_nanos = (1.0 - RTTVAR_GAIN) * self.rttvar_nanos
            + RTTVAR_GAIN * (self.srtt_nanos - sample).abs();
        self.srtt_nanos = (1.0 - RTT_GAIN) * self.srtt_nanos + RTT_GAIN * sample;
        let rto = self.srtt_nanos + nanos(CLOCK_GRANULARITY).max(4.0 * self.rttvar_nanos);
        self.rto = from_nanos(rto).min(MAX_RTO);
    }

    /// The smoothed round-trip time.
    pub fn srtt(&self) -> Duration {
        from_nanos(self.srtt_nanos)
    }

    /// The round-trip time variation.
    pub fn rttvar(&self) -> Duration {
        from_nanos(self.rttvar_nanos)
    }

    /// How long to wait for an acknowledgement before retransmitting.
    pub fn rto(&self) -> Duration {
        self.rto
    }
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn from_nanos(n: f64) -> Duration {
    // `as` saturates and maps NaN to 0, so no input can panic here.
    Duration::from_nanos(n as u64)
}

#[cfg(test)]
mod tests {
    // The expected values below are worked by hand from the formulas; the
    // plugin's own `CalculateRetransmissionTimeout`, fed the same samples,
    // reports the same SRTT, RTTVAR and RTO.
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn initial_values_are_the_plugins() {
        let e = RttEstimator::new();
        assert_eq!(e.srtt(), ms(100));
        assert_eq!(e.rttvar(), Duration::ZERO);
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn sample_equal_to_srtt_gives_granularity_floor() {
        // RTTVAR = 3/4*0 + 1/4*|100-100| = 0; SRTT = 100;
        // RTO = 100 + max(10, 0) = 110 ms.
        let mut e = RttEstimator::new();
        e.observe(ms(100));
        assert_eq!(e.srtt(), ms(100));
        assert_eq!(e.rttvar(), Duration::ZERO);
        assert_eq!(e.rto(), ms(110));
    }

    #[test]
    fn slow_sample_uses_old_srtt_for_variation() {
        // RTTVAR = 1/4*|100-500| = 100; SRTT = 87.5 + 62.5 = 150;
        // RTO = 150 + max(10, 400) = 550 ms. Had the new SRTT been used,
        // RTTVAR would be 87.5 and RTO 500 ms.
        let mut e = RttEstimator::new();
        e.observe(ms(500));
        assert_eq!(e.rttvar(), ms(100));
        assert_eq!(e.srtt(), ms(150));
        assert_eq!(e.rto(), ms(550));
    }

    #[test]
    fn second_sample() {
        // After 500 ms: SRTT 150, RTTVAR 100. Then 150 ms:
        // RTTVAR = 75 + 1/4*0 = 75; SRTT = 131.25 + 18.75 = 150;
        // RTO = 150 + 300 = 450 ms.
        let mut e = RttEstimator::new();
        e.observe(ms(500));
        e.observe(ms(150));
        assert_eq!(e.rttvar(), ms(75));
        assert_eq!(e.srtt(), ms(150));
        assert_eq!(e.rto(), ms(450));
    }

    #[test]
    fn rto_is_capped_at_one_second() {
        // RTTVAR = 1/4*1900 = 475; SRTT = 87.5 + 250 = 337.5;
        // 337.5 + 1900 = 2237.5 ms, capped to 1 s.
        let mut e = RttEstimator::new();
        e.observe(ms(2000));
        assert_eq!(e.srtt(), Duration::from_micros(337_500));
        assert_eq!(e.rto(), MAX_RTO);
    }

    #[test]
    fn fast_samples_converge_to_floor() {
        let mut e = RttEstimator::new();
        for _ in 0..200 {
            e.observe(ms(1));
        }
        // SRTT tends to 1 ms and RTTVAR to 0, so RTO tends to 1 + 10 ms.
        assert!(e.rto() >= ms(11) && e.rto() < ms(12), "{:?}", e.rto());
    }

    #[test]
    fn absurd_sample_does_not_panic() {
        let mut e = RttEstimator::new();
        e.observe(Duration::MAX);
        assert_eq!(e.rto(), MAX_RTO);
    }
}
