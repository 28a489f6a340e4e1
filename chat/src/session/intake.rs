//! Hand-overs in progress go before routing passes on this instance.
//!
//! In a burst (hundreds of 转人工 at 09:00) the hand-over requests and the routers' batches
//! compete for the same writer (SQLite's one connection; PostgreSQL's pool and CPU). A
//! taxpayer waits for the answer to `requestHuman`, but nobody waits for an assignment to
//! start a few hundred milliseconds later: so a routing batch waits while hand-overs are in
//! flight, up to [`MAX_DEFER`] (then it runs anyway, so a steady stream of hand-overs never
//! starves routing).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The longest a routing batch waits for hand-overs in flight.
pub const MAX_DEFER: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct IntakeGate {
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One hand-over in flight; dropping it ends the turn.
pub struct Turn(Arc<IntakeGate>);

impl IntakeGate {
    pub fn enter(self: &Arc<Self>) -> Turn {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Turn(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Returns once no hand-over is in flight, or after `MAX_DEFER`.
    pub async fn quiet(&self) {
        let deadline = tokio::time::Instant::now() + MAX_DEFER;
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENEROUS: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn quiet_waits_for_the_last_turn() {
        let gate = Arc::new(IntakeGate::default());
        let first = gate.enter();
        let second = gate.enter();
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.quiet().await });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one hand-over is still in flight");
        drop(second);
        tokio::time::timeout(GENEROUS, waiter)
            .await
            .expect("quiet once the last turn ended")
            .unwrap();
        assert_eq!(gate.in_flight(), 0);
    }

    #[tokio::test]
    async fn quiet_gives_up_waiting_so_routing_is_never_starved() {
        let gate = Arc::new(IntakeGate::default());
        let _stuck = gate.enter();
        tokio::time::timeout(GENEROUS, gate.quiet())
            .await
            .expect("routing goes on after MAX_DEFER");
        assert_eq!(gate.in_flight(), 1);
    }
}
