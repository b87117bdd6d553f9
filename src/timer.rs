//! The one place a probe sleeps: until an absolute deadline, so a schedule
//! computed as t0 + k·interval never drifts. tokio's clock drives it, which
//! lets tests pause time.

use std::time::Instant;

/// Resolves at `deadline`.
pub async fn sleep_until(deadline: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
}
