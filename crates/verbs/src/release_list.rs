//! The release list: a bounded, lock-free list that many threads append to
//! and one drainer empties.
//!
//! Why: an RPC-over-RDMA transport releases a Send's buffers when the Send
//! completes. The completion thread must not take the transport's locks or
//! wait for JavaScript, so it appends the Send's work request id here; the
//! transport's JavaScript worker drains the list when it next runs (before it
//! needs a send context) and releases the buffers itself.
//!
//! Life: created by JavaScript (`new ReleaseList(capacity)`) or Rust, shared
//! by `Arc` with the completion threads that append to it; freed when the
//! last holder drops it. `push` may run on any thread at once; `drain` on one
//! thread at a time (asserted).
//!
//! Layout (a Vyukov bounded queue, used multi-producer/single-consumer):
//!
//! ```text
//!   slots:  [ s0 | s1 | s2 | s3 ]        capacity = 4 (a power of two)
//!   slot i: sequence == position        -> free for the producer at `position`
//!           sequence == position + 1    -> holds the value pushed at `position`
//!   tail:   next position a producer claims (compare-and-swap)
//!   head:   next position the drainer reads (only the drainer writes it)
//! ```
//!
//! A producer that claimed a slot but has not yet published it stops a
//! drain at that slot; what follows is drained next time, in order.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Largest capacity: 65536 entries (512 KiB of slots) covers the deepest
/// send queue a transport would have in flight.
pub const RELEASE_LIST_CAPACITY_MAX: usize = 1 << 16;

struct Slot {
    sequence: AtomicUsize,
    value: AtomicU64,
}

/// A bounded multi-producer/single-drainer list of u64 values.
pub struct ReleaseList {
    slots: Box<[Slot]>,
    mask: usize,
    tail: AtomicUsize,
    head: AtomicUsize,
    draining: AtomicBool,
}

/// `push` found every slot taken; the value was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFull(pub u64);

impl ReleaseList {
    /// A list holding at most `capacity` values (a power of two, 2..=MAX).
    pub fn new(capacity: usize) -> ReleaseList {
        assert!(capacity.is_power_of_two() && (2..=RELEASE_LIST_CAPACITY_MAX).contains(&capacity), "capacity {capacity}");
        let slots = (0..capacity).map(|index| Slot { sequence: AtomicUsize::new(index), value: AtomicU64::new(0) }).collect();
        ReleaseList { slots, mask: capacity - 1, tail: AtomicUsize::new(0), head: AtomicUsize::new(0), draining: AtomicBool::new(false) }
    }

    /// How many values the list can hold.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Values appended and not yet drained (a snapshot).
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// True when nothing waits to be drained (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `value` without locking; any thread may call it.
    pub fn push(&self, value: u64) -> Result<(), ListFull> {
        let mut position = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[position & self.mask];
            let sequence = slot.sequence.load(Ordering::Acquire);
            let lag = sequence as isize - position as isize;
            if lag == 0 {
                match self.tail.compare_exchange_weak(position, position + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        slot.value.store(value, Ordering::Relaxed);
                        slot.sequence.store(position + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => position = current,
                }
            } else if lag < 0 {
                return Err(ListFull(value));
            } else {
                position = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Hands up to `max` values to `visit`, oldest first; returns how many.
    /// Only one thread may drain at a time (a programmer error otherwise).
    pub fn drain(&self, max: usize, mut visit: impl FnMut(u64)) -> usize {
        let already = self.draining.swap(true, Ordering::Acquire);
        assert!(!already, "ReleaseList drained by two threads at once");
        let mut drained = 0;
        let mut position = self.head.load(Ordering::Relaxed);
        while drained < max {
            let slot = &self.slots[position & self.mask];
            if slot.sequence.load(Ordering::Acquire) != position + 1 {
                break; // empty, or a producer has not published yet
            }
            let value = slot.value.load(Ordering::Relaxed);
            slot.sequence.store(position + self.capacity(), Ordering::Release);
            position += 1;
            self.head.store(position, Ordering::Release);
            drained += 1;
            visit(value);
        }
        self.draining.store(false, Ordering::Release);
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn values_drain_in_push_order() {
        let list = ReleaseList::new(8);
        for value in 1..=5 {
            list.push(value).unwrap();
        }
        assert_eq!(list.len(), 5);
        let mut seen = Vec::new();
        assert_eq!(list.drain(3, |value| seen.push(value)), 3);
        assert_eq!(list.drain(100, |value| seen.push(value)), 2);
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        assert!(list.is_empty());
    }

    #[test]
    fn a_full_list_refuses_the_value_and_accepts_again_after_a_drain() {
        let list = ReleaseList::new(4);
        for value in 0..4 {
            list.push(value).unwrap();
        }
        assert_eq!(list.push(99), Err(ListFull(99)));
        assert_eq!(list.drain(1, |value| assert_eq!(value, 0)), 1);
        list.push(4).unwrap();
        let mut seen = Vec::new();
        list.drain(usize::MAX, |value| seen.push(value));
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }

    #[test]
    fn wrapping_many_times_keeps_every_value() {
        let list = ReleaseList::new(2);
        for round in 0..10_000u64 {
            list.push(round).unwrap();
            list.drain(1, |value| assert_eq!(value, round));
        }
        assert!(list.is_empty());
    }

    #[test]
    #[should_panic(expected = "drained by two threads at once")]
    fn a_second_drainer_during_a_drain_is_a_programmer_error() {
        let list = ReleaseList::new(4);
        list.push(1).unwrap();
        list.drain(1, |_| {
            list.drain(1, |_| {});
        });
    }

    #[test]
    #[should_panic]
    fn capacity_must_be_a_power_of_two() {
        ReleaseList::new(3);
    }

    /// Four producers append 200 000 distinct values between them while one
    /// drainer empties the list concurrently: every value arrives exactly
    /// once, and each producer's values arrive in the order it pushed them.
    #[test]
    fn stress_many_producers_one_drainer() {
        const PRODUCERS: u64 = 4;
        const PER_PRODUCER: u64 = 50_000;
        let list = Arc::new(ReleaseList::new(64));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let list = list.clone();
                thread::spawn(move || {
                    for sequence in 0..PER_PRODUCER {
                        let value = producer << 32 | sequence;
                        while list.push(value).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut last_per_producer = vec![None::<u64>; PRODUCERS as usize];
        while seen.len() < (PRODUCERS * PER_PRODUCER) as usize {
            list.drain(32, |value| {
                let (producer, sequence) = ((value >> 32) as usize, value & 0xffff_ffff);
                if let Some(last) = last_per_producer[producer] {
                    assert!(sequence > last, "producer {producer} out of order");
                }
                last_per_producer[producer] = Some(sequence);
                assert!(seen.insert(value), "value {value:#x} drained twice");
            });
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(list.is_empty());
        assert_eq!(list.drain(usize::MAX, |_| panic!("nothing left")), 0);
    }
}
