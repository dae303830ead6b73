//! The release list: a bounded, lock-free list of completed Sends that
//! completion threads append to and the transport's owner drains.
//!
//! Why: an RPC-over-RDMA transport releases a Send's buffers when the Send
//! completes. The completion thread must not take the transport's locks or
//! wait for JavaScript, so it appends the Send's work request id here; the
//! transport's owner drains the list between RPCs and releases the buffers
//! itself, in a batch (Linux svcrdma's `sc_send_release_list`).
//!
//! The empty -> non-empty transition wakes the owner once (the `waker`, a
//! threadsafe call into JavaScript): under load the owner's own drains keep
//! the list non-empty between appends and nobody is woken; only the trailing
//! edge of a burst pays for a wake-up. A failed or flushed Send is appended
//! like any other, its value marked with `FAILED_BIT`, and sets `closing`.
//!
//! The list is a `BoundedList` (Linux's llist with a fixed node pool): an
//! append is one compare-and-swap after taking a node, the append that found
//! the list empty is the transition, and a drain swaps the whole batch out,
//! so several workers serving one transport may drain at once.
//!
//! Life: created by JavaScript (`new ReleaseList(capacity, { onPending })`)
//! or Rust, shared by `Arc` with the completion threads that append to it;
//! freed when the last holder drops it. `push` and `drain` may run on any
//! thread at once. The list is sized to the owner's bound on Sends in
//! flight, so a full list is a programmer error (asserted), never a fallback.

use crate::bounded_list::{BoundedList, Drained};
use crate::bounded_queue::Waker;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest capacity: the deepest send queue a transport would have in flight.
pub use crate::bounded_list::LIST_CAPACITY_MAX as RELEASE_LIST_CAPACITY_MAX;

/// Set in a value whose Send failed or was flushed (2^52: above every id a
/// list accepts, and still exact in a JavaScript number).
pub const FAILED_BIT: u64 = 1 << 52;

/// A bounded multi-producer/multi-drainer list of Send work request ids.
pub struct ReleaseList {
    queue: BoundedList<u64>,
    waker: Option<Waker>,
    closing: AtomicBool,
}

impl ReleaseList {
    /// A list of `capacity` ids (2..=MAX) that calls `waker`
    /// on each empty -> non-empty transition.
    pub fn new(capacity: usize, waker: Option<Waker>) -> ReleaseList {
        ReleaseList { queue: BoundedList::new(capacity), waker, closing: AtomicBool::new(false) }
    }

    /// How many ids the list can hold.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Ids appended and not yet drained (a snapshot).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits to be drained (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Appends a completed Send's id without locking; any thread may call
    /// it. Returns true when this append took the list from empty to
    /// non-empty, in which case the owner has been woken.
    pub fn push(&self, wr_id: u64) -> bool {
        assert!(wr_id < FAILED_BIT, "wrId {wr_id:#x} does not fit below the failed bit");
        self.append(wr_id)
    }

    /// Appends a Send that failed or was flushed (marked with FAILED_BIT) and
    /// marks the list's transport as closing (svcrdma's XPT_CLOSE).
    pub fn push_failed(&self, wr_id: u64) -> bool {
        assert!(wr_id < FAILED_BIT, "wrId {wr_id:#x} does not fit below the failed bit");
        self.closing.store(true, Ordering::Release);
        self.append(wr_id | FAILED_BIT)
    }

    fn append(&self, value: u64) -> bool {
        let transition = match self.queue.push(value) {
            Ok(transition) => transition,
            Err(_) => panic!("release list full ({} ids): it must hold every Send in flight", self.capacity()),
        };
        if transition {
            self.wake();
        }
        transition
    }

    /// True once a failed Send was appended.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Hands up to `max` ids to `visit`, oldest first; returns how many.
    /// Ids beyond `max` stay on the list and wake the owner again, as a
    /// transition would. Concurrent drains each get ids no other gets.
    pub fn drain(&self, max: usize, visit: impl FnMut(u64)) -> usize {
        let Drained { count, more } = self.queue.drain(max, visit);
        if more {
            self.wake();
        }
        count
    }

    fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn counting_list(capacity: usize) -> (ReleaseList, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let waker: Waker = Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        (ReleaseList::new(capacity, Some(waker)), wakes)
    }

    #[test]
    fn the_owner_is_woken_once_per_transition_not_per_send() {
        let (list, wakes) = counting_list(8);
        assert!(list.push(1));
        assert!(!list.push(2));
        assert!(!list.push(3));
        assert_eq!(wakes.load(Ordering::Relaxed), 1);
        let mut seen = Vec::new();
        assert_eq!(list.drain(usize::MAX, |id| seen.push(id)), 3);
        assert_eq!(seen, vec![1, 2, 3]);
        assert!(list.push(4), "drained empty: a new transition");
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_failed_send_is_appended_marked_and_closes_the_transport() {
        let (list, _) = counting_list(4);
        assert!(!list.is_closing());
        list.push(5);
        list.push_failed(6);
        assert!(list.is_closing());
        let mut seen = Vec::new();
        list.drain(usize::MAX, |id| seen.push(id));
        assert_eq!(seen, vec![5, 6 | FAILED_BIT]);
    }

    #[test]
    fn a_drain_bounded_below_the_pending_count_wakes_the_owner_again() {
        let (list, wakes) = counting_list(8);
        for id in 0..4 {
            list.push(id);
        }
        assert_eq!(list.drain(2, |_| {}), 2);
        assert_eq!(wakes.load(Ordering::Relaxed), 2, "the transition, then the drain that left ids behind");
        assert_eq!(list.drain(usize::MAX, |_| {}), 2);
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
    }

    #[test]
    #[should_panic(expected = "release list full")]
    fn a_full_list_is_a_programmer_error() {
        let (list, _) = counting_list(2);
        list.push(1);
        list.push(2);
        list.push(3);
    }

    #[test]
    #[should_panic(expected = "failed bit")]
    fn ids_must_stay_below_the_failed_bit() {
        let (list, _) = counting_list(2);
        list.push(FAILED_BIT);
    }
}
