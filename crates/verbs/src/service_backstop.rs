//! The service queue's backstop: a native thread that routes the
//! completions no worker got to, every `BACKSTOP_PERIOD` while the queue
//! watches any completion channel (`ServiceQueue::poll_now`), less often
//! (down to every `QUIET_PERIOD_MAX`) while its turns find nothing to do.
//!
//! Why: the poller role is held only by a worker in `take` (or waiting for
//! a release or its Reads). While every worker is busy inside a procedure
//! nobody polls, yet Sends must reach the release list and Receives the
//! receive queue as the device reports them (as the kernel's completion
//! handlers run whatever its nfsd threads do), a teardown's drain markers
//! must be seen, and a transport `received` queued without a wake must be
//! taken. It also routes the Sends of a transport that had no release
//! since its previous turn (`ServiceTransport::route_idle_sends`): a Send
//! CQ raises no event while nobody waits on it (service_transport.rs), so
//! the trailing edge of a burst reaches the release list — and its
//! transition the self-enqueue — within two of its periods. The main thread did this with a JavaScript interval timer, which
//! cost about a tenth of a vCPU in the emulated lab (a timer turn of its
//! event loop per 10 ms, ~1 ms of CPU each); this thread's turn is a sleep
//! and, only when the role is free, one epoll_wait. Even so a timer wake
//! costs up to ~1 ms of emulated CPU under load (1-7% of a vCPU at 100 per
//! second, measured at 1 outstanding NULL call), so a quiet backstop backs
//! off: while workers come back to `take` and poll themselves there is
//! nothing for it to do; the first turn that routes something or wakes a
//! worker brings it back to `BACKSTOP_PERIOD`.
//!
//! Life: started by `serviceQueueCreate` with its own `Arc` of the queue;
//! asleep (in a futex on the count of watched channels, woken by the
//! first `watch`) while no transport's channels are watched; ends within a
//! period once the queue is closed (`close` wakes it), dropping its `Arc`.

use crate::error::{Result, VerbsError};
use crate::service_queue::{futex_wait, ServiceQueue};
use crate::service_transport::ServiceTransport;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Longest a completion waits for routing while every worker is busy (once the backstop is busy too).
pub const BACKSTOP_PERIOD: Duration = Duration::from_millis(10);
/// Longest period of a backstop whose turns found nothing to do (doubling from `BACKSTOP_PERIOD`).
pub const QUIET_PERIOD_MAX: Duration = Duration::from_millis(40);
/// Longest sleep with nothing watched: bounds the thread's life after a close it missed.
const IDLE_SLEEP: Duration = Duration::from_secs(1);

/// Starts `queue`'s backstop thread.
pub fn start(queue: Arc<ServiceQueue>) -> Result<()> {
    std::thread::Builder::new()
        .name("roce-svc-backstop".into())
        .spawn(move || {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&queue))).is_err() {
                std::process::abort();
            }
        })
        .map(drop)
        .map_err(|error| VerbsError::from_errno(error.raw_os_error().unwrap_or(libc::EAGAIN), "spawn service backstop thread"))
}

fn run(queue: &ServiceQueue) {
    let mut period = BACKSTOP_PERIOD;
    while !queue.is_closed() {
        let watched = queue.completions.watched();
        if watched.load(Ordering::SeqCst) == 0 {
            futex_wait(watched, 0, IDLE_SLEEP);
            continue;
        }
        std::thread::sleep(period);
        if queue.is_closed() {
            break;
        }
        // Both, always: a transport's trailing-edge Sends, then what waits on the channels and in the queue.
        let routed = ServiceTransport::route_idle_sends(queue);
        let polled = queue.poll_now();
        period = if routed || polled { BACKSTOP_PERIOD } else { (period * 2).min(QUIET_PERIOD_MAX) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_completions::Channel;
    use crate::service_queue::{wait_until, TransportFlags, DATA, TAKE_WAIT_MAX};
    use std::time::Instant;

    /// The case nobody else covers: a transport `received` queued again
    /// (without a wake) while the only idle worker sleeps in epoll_wait
    /// holding the poller role. The backstop wakes it within a few periods
    /// (it has backed off to its quiet period by then); without it the
    /// worker would sleep out its whole take wait.
    #[test]
    fn a_transport_queued_without_a_wake_is_taken_within_a_few_backstop_periods() {
        let queue = Arc::new(ServiceQueue::new().unwrap());
        // A channel that never fires, so that the backstop has something to watch.
        // SAFETY: plain syscall; closed at the end of the test.
        let quiet_channel = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        queue.completions.watch(1, Channel::Receive, quiet_channel, Duration::ZERO).unwrap();
        start(queue.clone()).unwrap();
        let flags = TransportFlags::default();
        flags.set(DATA);
        queue.enqueue(9, &flags);
        assert_eq!(queue.take(1, TAKE_WAIT_MAX), Some(9), "this thread is worker 1, serving transport 9");
        let sleeper = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let id = queue.take(0, TAKE_WAIT_MAX);
                (id, Instant::now())
            })
        };
        wait_until("the idle worker polling", || queue.completions.is_held());
        assert!(queue.completions.try_poller().is_none(), "the idle worker sleeps in epoll_wait with the role");
        let queued = Instant::now();
        queue.received(1, 9, &flags);
        let (id, taken) = sleeper.join().unwrap();
        assert_eq!(id, Some(9));
        assert!(taken - queued < Duration::from_millis(500), "taken after {:?}: not woken by the backstop", taken - queued);
        queue.close();
        queue.completions.unwatch(quiet_channel);
        // SAFETY: ours, closed once.
        unsafe { libc::close(quiet_channel) };
    }
}
