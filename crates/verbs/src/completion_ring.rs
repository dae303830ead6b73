//! The completion ring of a notified completion queue.
//!
//! Why: handing every batch of completions to JavaScript through its own
//! threadsafe call costs one event-loop hop per batch (≈ 4.5 ms each in the
//! emulated lab), and polling the CQ from the event loop instead makes the
//! loop spin. A notified CQ does neither: its completion thread appends each
//! completion here, lock-free, and wakes JavaScript once per empty ->
//! non-empty transition; JavaScript then takes everything that arrived with
//! `cq.pollInto` in one call (no allocation per completion).
//!
//! Life: created with its CQ (`cqCreate` with `onPending`), shared by `Arc`
//! between the CQ (JavaScript side) and its completion thread; freed with
//! the last of them. Appended to only by the completion thread, drained only
//! on the JavaScript thread that owns the CQ.

use crate::bounded_queue::{BoundedQueue, Waker};
use crate::completion_thread::{CompletionSink, SinkOutcome};
use crate::sys::roce_completion;
use std::sync::Arc;

/// A bounded ring of completions with a transition wake.
pub struct CompletionRing {
    queue: BoundedQueue<roce_completion>,
    waker: Waker,
}

impl CompletionRing {
    /// A ring of `capacity` completions (a power of two): the CQ's depth
    /// rounded up, so it holds whatever the CQ could.
    pub fn new(capacity: usize, waker: Waker) -> CompletionRing {
        CompletionRing { queue: BoundedQueue::new(capacity), waker }
    }

    /// Completions waiting for JavaScript (a snapshot).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Appends `batch` in order; what did not fit comes back.
    fn append_batch(&self, batch: Vec<roce_completion>) -> Result<(), Vec<roce_completion>> {
        for (index, completion) in batch.iter().enumerate() {
            match self.queue.append(*completion) {
                Ok(true) => (self.waker)(),
                Ok(false) => {}
                Err(_) => return Err(batch[index..].to_vec()),
            }
        }
        Ok(())
    }

    /// Moves up to `out.len()` completions into `out`, oldest first; returns
    /// how many. If some are left (out was too small, or one was still being
    /// published), the owner is woken again.
    pub fn drain_into(&self, out: &mut [roce_completion]) -> usize {
        let mut index = 0;
        let drained = self.queue.drain(out.len(), |completion| {
            out[index] = completion;
            index += 1;
        });
        if drained.more {
            (self.waker)();
        }
        drained.count
    }
}

/// The completion thread's sink of a notified CQ.
pub struct RingSink(pub Arc<CompletionRing>);

impl CompletionSink for RingSink {
    fn deliver(&self, batch: Vec<roce_completion>) -> SinkOutcome {
        match self.0.append_batch(batch) {
            Ok(()) => SinkOutcome::Accepted,
            Err(rest) => SinkOutcome::Full(rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn completion(wr_id: u32) -> roce_completion {
        roce_completion { wr_id_low: wr_id, ..Default::default() }
    }

    #[test]
    fn batches_wake_once_per_transition_and_a_full_ring_hands_the_rest_back() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let ring = Arc::new(CompletionRing::new(4, Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })));
        let sink = RingSink(ring.clone());
        assert!(matches!(sink.deliver(vec![completion(1), completion(2)]), SinkOutcome::Accepted));
        assert!(matches!(sink.deliver(vec![completion(3)]), SinkOutcome::Accepted));
        assert_eq!(wakes.load(Ordering::Relaxed), 1);
        let SinkOutcome::Full(rest) = sink.deliver(vec![completion(4), completion(5)]) else { panic!("the ring holds 4") };
        assert_eq!(rest, vec![completion(5)]);
        let mut out = [roce_completion::default(); 8];
        assert_eq!(ring.drain_into(&mut out), 4);
        assert_eq!(out[..4].iter().map(|c| c.wr_id_low).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(matches!(sink.deliver(rest), SinkOutcome::Accepted));
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
    }
}
