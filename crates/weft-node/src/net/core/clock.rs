//! Where the core reads the time. Every timeout, retry and timestamp of the core's protocol
//! goes through [`Clock`]: the machine's clocks in a node ([`SystemClock`]), a clock a test
//! moves by hand otherwise — the first step of a core that takes the time as an input instead
//! of reading it. Durations measured for metrics (how long a commit took) are wall time and
//! read the machine's clock where they are measured.

use std::time::Instant;

pub(crate) trait Clock: Send {
    /// A monotonic instant, for timeouts and retries.
    fn now(&self) -> Instant;
    /// Milliseconds since the Unix epoch, for block timestamps and signed records.
    fn unix_ms(&self) -> u64;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_ms(&self) -> u64 {
        crate::submission::now_ms()
    }
}
