//! Draining a queue pair before teardown (Linux's `ib_drain_qp`).
//!
//! Why: a transport may free a Send's resources only once the device is done
//! with them. `CmId::drain` moves the QP to the error state (every posted
//! work request then completes or is flushed, in order) and posts one marker
//! Send and one marker Receive behind them. When the completion queues
//! produce both markers, every earlier completion of that QP has been polled
//! and routed (Sends onto the release list, others to their sink), so the
//! owner may drain the release list and flush its receive queue.
//!
//! Life: a `QueuePairDrain` is created by `CmId::drain` and registered with
//! the QP's two CQs (`DrainMarkers`); whoever polls those CQs (a completion
//! thread, or the owner of a polled CQ) finds the markers, removes them from
//! the completions it returns, and finishes the drain when both were seen.
//! Dropped when both CQs let go of it (or with the CQs, if the markers never
//! come: the waker is then released without being called).

use crate::bounded_queue::Waker;
use crate::sys::roce_completion;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// wrId of the marker Send (never a caller's: those are at most 2^53 - 1).
pub const SEND_MARKER_WR_ID: u64 = u64::MAX;
/// wrId of the marker Receive.
pub const RECEIVE_MARKER_WR_ID: u64 = u64::MAX - 1;
/// Lowest marker id: completions below it are never looked at twice.
const MARKER_WR_ID_MIN: u64 = RECEIVE_MARKER_WR_ID;

/// One drain in progress: finished when both markers were polled.
pub struct QueuePairDrain {
    markers_left: AtomicU32,
    done: Waker,
}

impl QueuePairDrain {
    /// A drain that calls `done` once both markers were polled.
    pub fn new(done: Waker) -> Arc<QueuePairDrain> {
        Arc::new(QueuePairDrain { markers_left: AtomicU32::new(2), done })
    }

    fn marker_seen(&self) {
        if self.markers_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            (self.done)();
        }
    }
}

/// The drains a completion queue waits on: (QP number, marker wrId, drain).
/// Locked only to register a drain and when a marker arrives, never for an
/// ordinary completion.
#[derive(Default)]
pub struct DrainMarkers {
    waiting: Mutex<Vec<(u32, u64, Arc<QueuePairDrain>)>>,
}

impl DrainMarkers {
    /// Expects `marker` of QP `qp_number` on this CQ. False if one is already
    /// expected (a drain is in progress).
    pub fn expect(&self, qp_number: u32, marker: u64, drain: Arc<QueuePairDrain>) -> bool {
        let mut waiting = self.waiting.lock().expect("drain markers lock poisoned");
        if waiting.iter().any(|(number, expected, _)| *number == qp_number && *expected == marker) {
            return false;
        }
        waiting.push((qp_number, marker, drain));
        true
    }

    /// Forgets the markers of QP `qp_number` (their post failed).
    pub fn cancel(&self, qp_number: u32) {
        self.waiting.lock().expect("drain markers lock poisoned").retain(|(number, _, _)| *number != qp_number);
    }

    /// Removes marker completions from `completions`, keeping the others in
    /// order; returns how many are left. Drains whose last marker was found
    /// are pushed on `finished`: the caller finishes them once it has routed
    /// the completions polled with the marker (which came before it).
    pub fn filter(&self, completions: &mut [roce_completion], finished: &mut Vec<Arc<QueuePairDrain>>) -> usize {
        let mut kept = 0;
        for index in 0..completions.len() {
            let completion = completions[index];
            if completion.wr_id() >= MARKER_WR_ID_MIN {
                if let Some(drain) = self.take(completion.qp_num, completion.wr_id()) {
                    finished.push(drain);
                    continue;
                }
            }
            completions[kept] = completion;
            kept += 1;
        }
        kept
    }

    fn take(&self, qp_number: u32, marker: u64) -> Option<Arc<QueuePairDrain>> {
        let mut waiting = self.waiting.lock().expect("drain markers lock poisoned");
        let index = waiting.iter().position(|(number, expected, _)| *number == qp_number && *expected == marker)?;
        Some(waiting.swap_remove(index).2)
    }
}

/// Counts the markers of `finished` as seen (after their CQ's earlier
/// completions were routed).
pub fn finish(finished: &mut Vec<Arc<QueuePairDrain>>) {
    for drain in finished.drain(..) {
        drain.marker_seen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(qp_num: u32, wr_id: u64) -> roce_completion {
        roce_completion { wr_id_low: wr_id as u32, wr_id_high: (wr_id >> 32) as u32, qp_num, ..Default::default() }
    }

    #[test]
    fn a_drain_finishes_when_both_markers_were_polled_and_markers_never_reach_the_caller() {
        let finished_count = Arc::new(AtomicU32::new(0));
        let counter = finished_count.clone();
        let drain = QueuePairDrain::new(Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        let (send_cq, receive_cq) = (DrainMarkers::default(), DrainMarkers::default());
        assert!(send_cq.expect(7, SEND_MARKER_WR_ID, drain.clone()));
        assert!(!send_cq.expect(7, SEND_MARKER_WR_ID, drain.clone()), "one drain at a time per QP");
        assert!(receive_cq.expect(7, RECEIVE_MARKER_WR_ID, drain));
        let mut finished = Vec::new();
        let mut polled = [completion(7, 1), completion(9, SEND_MARKER_WR_ID), completion(7, SEND_MARKER_WR_ID), completion(7, 2)];
        assert_eq!(send_cq.filter(&mut polled, &mut finished), 3, "another QP's marker-like id is kept");
        assert_eq!(polled[..3].iter().map(|c| c.wr_id()).collect::<Vec<_>>(), vec![1, SEND_MARKER_WR_ID, 2]);
        finish(&mut finished);
        assert_eq!(finished_count.load(Ordering::Relaxed), 0);
        let mut polled = [completion(7, RECEIVE_MARKER_WR_ID)];
        assert_eq!(receive_cq.filter(&mut polled, &mut finished), 0);
        finish(&mut finished);
        assert_eq!(finished_count.load(Ordering::Relaxed), 1);
    }
}
