//! Send Queue accounting of one queue pair: how many work requests its Send
//! Queue can still take, kept natively so that posting and completion agree
//! without JavaScript counting (svcrdma's sc_sq_avail).
//!
//! Rule: every post takes one entry. A signaled work request, when it
//! completes, gives back its own entry and those of the unsignaled requests
//! posted before it since the previous signaled one (an RC queue pair
//! completes in posting order, so they are done too). The counts to give back
//! wait in `retiring`, in posting order.
//!
//! Life: created with its queue pair (`CmId::create_queue_pair`), shared by
//! `Arc` with the Send CQ (the first QP on a CQ gets accounted; a CQ shared by
//! several QPs accounts only that one). `posting` runs on the thread that
//! posts; `completed` on whoever polls the Send CQ (its completion thread);
//! waiters are registered on the posting thread and woken from the polling
//! one. After a failed completion the account stops counting (flushes also
//! report unsignaled requests) and is `failed` for good.

use crate::bounded_queue::{BoundedQueue, Waker};
use crate::sys;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Mutex;

/// Waiters at once: a transport has a handful of workers; more is a leak.
pub const SEND_QUEUE_WAITERS_MAX: usize = 64;

/// A queue pair's Send Queue account.
pub struct SendQueueAccount {
    qp_number: u32,
    available: AtomicI64,
    retiring: BoundedQueue<u32>,
    /// Unsignaled requests posted since the last signaled one (posting thread).
    unsignaled: AtomicU32,
    failed: AtomicBool,
    waiters: Mutex<Vec<(u32, Waker)>>,
    has_waiters: AtomicBool,
}

impl SendQueueAccount {
    /// An account of `depth` entries for QP `qp_number`.
    pub fn new(qp_number: u32, depth: u32) -> SendQueueAccount {
        SendQueueAccount {
            qp_number,
            available: AtomicI64::new(depth as i64),
            // At most `depth` signaled requests are outstanding at once.
            retiring: BoundedQueue::new((depth as usize).next_power_of_two().max(2)),
            unsignaled: AtomicU32::new(0),
            failed: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
            has_waiters: AtomicBool::new(false),
        }
    }

    /// Entries the Send Queue can take now (a snapshot).
    pub fn available(&self) -> i64 {
        self.available.load(Ordering::Acquire)
    }

    /// True once a Send-queue completion failed: counting stopped.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// One work request is about to be posted. Counted BEFORE ibv_post_send:
    /// its completion may be polled before the post call even returns, and
    /// must find its count in `retiring`.
    pub fn posting(&self, signaled: bool) {
        self.available.fetch_sub(1, Ordering::AcqRel);
        if !signaled {
            self.unsignaled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let retired = self.unsignaled.swap(0, Ordering::Relaxed) + 1;
        assert!(self.retiring.append(retired).is_ok(), "more signaled work requests outstanding than the Send Queue holds");
    }

    /// The post counted by `posting` failed (the QP is broken or misused):
    /// counting stops, as after a failed completion, and waiters are woken.
    pub fn post_failed(&self) {
        self.failed.store(true, Ordering::Release);
        self.wake_waiters(true);
    }

    /// A completion polled from the Send CQ (any QP's; markers taken out).
    pub fn completed(&self, completion: &sys::roce_completion) {
        if completion.qp_num != self.qp_number || self.is_failed() {
            return;
        }
        if completion.status != sys::IBV_WC_SUCCESS {
            self.failed.store(true, Ordering::Release);
            self.wake_waiters(true);
            return;
        }
        if completion.opcode & sys::IBV_WC_RECV != 0 {
            return; // a Receive on a CQ shared by both queues
        }
        let mut retired = 0;
        self.retiring.drain(1, |count| retired = count);
        // SeqCst with `wait`'s flag store and check: a store-then-load on each
        // side, where Acquire/Release alone would let both miss the other.
        self.available.fetch_add(retired as i64, Ordering::SeqCst);
        if self.has_waiters.load(Ordering::SeqCst) {
            self.wake_waiters(false);
        }
    }

    /// Calls `waker` once at least `entries` are available (or the account
    /// failed). Ok(false): there already are, nothing registered.
    pub fn wait(&self, entries: u32, waker: Waker) -> Result<bool, Waker> {
        let mut waiters = self.waiters.lock().expect("send queue waiters lock poisoned");
        if waiters.len() == SEND_QUEUE_WAITERS_MAX {
            return Err(waker);
        }
        self.has_waiters.store(true, Ordering::SeqCst);
        // Checked after publishing has_waiters: a completion that credits
        // between our check and the push sees the flag and takes the lock.
        if self.is_failed() || self.available.load(Ordering::SeqCst) >= entries as i64 {
            self.has_waiters.store(!waiters.is_empty(), Ordering::Release);
            return Ok(false);
        }
        waiters.push((entries, waker));
        Ok(true)
    }

    fn wake_waiters(&self, all: bool) {
        let mut waiters = self.waiters.lock().expect("send queue waiters lock poisoned");
        let available = self.available();
        waiters.retain(|(entries, waker)| {
            let ready = all || available >= *entries as i64;
            if ready {
                waker();
            }
            !ready
        });
        self.has_waiters.store(!waiters.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn send_completion(qp_num: u32, status: u32) -> sys::roce_completion {
        sys::roce_completion { qp_num, status, opcode: sys::IBV_WC_SEND, ..Default::default() }
    }

    fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        (Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }), calls)
    }

    #[test]
    fn a_signaled_completion_gives_back_the_unsignaled_requests_before_it() {
        let account = SendQueueAccount::new(7, 8);
        account.posting(false); // Write
        account.posting(false); // Write
        account.posting(true); // Send
        account.posting(true); // Send
        assert_eq!(account.available(), 4);
        account.completed(&send_completion(9, sys::IBV_WC_SUCCESS)); // another QP: ignored
        assert_eq!(account.available(), 4);
        account.completed(&send_completion(7, sys::IBV_WC_SUCCESS));
        assert_eq!(account.available(), 7, "the Send and its two Writes");
        account.completed(&send_completion(7, sys::IBV_WC_SUCCESS));
        assert_eq!(account.available(), 8);
    }

    #[test]
    fn a_waiter_is_woken_once_there_is_room_and_all_are_woken_on_failure() {
        let account = SendQueueAccount::new(7, 2);
        account.posting(true);
        account.posting(true);
        let (waker, calls) = counting_waker();
        assert!(account.wait(1, waker).ok().unwrap(), "full: registered");
        let (now, now_calls) = counting_waker();
        account.completed(&send_completion(7, sys::IBV_WC_SUCCESS));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(!account.wait(1, now).ok().unwrap(), "room now: not registered");
        assert_eq!(now_calls.load(Ordering::Relaxed), 0);
        let (big, big_calls) = counting_waker();
        assert!(account.wait(2, big).ok().unwrap());
        account.completed(&send_completion(7, sys::IBV_WC_WR_FLUSH_ERR));
        assert_eq!(big_calls.load(Ordering::Relaxed), 1, "a failure wakes every waiter");
        assert!(account.is_failed());
    }
}
