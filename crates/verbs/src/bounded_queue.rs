//! A bounded, lock-free queue that many threads append to and one drainer
//! empties, and that tells its producers when it goes from empty to
//! non-empty (the answer of Linux's `llist_add`).
//!
//! Why: a notified CQ's completion ring and a QP's Send Queue account need
//! "append without a lock from a completion thread, wake the owner once per
//! burst, drain in a batch on the owner's thread", each with one drainer.
//! The release list, which several workers may drain at once, is a
//! `bounded_list` instead.
//!
//! Life: owned by the object that embeds it (`CompletionRing`,
//! `SendQueueAccount`); `append` may run on any thread at once, `drain` on one
//! thread at a time (asserted).
//!
//! Layout (a Vyukov bounded queue, used multi-producer/single-consumer):
//!
//! ```text
//!   slots:   [ s0 | s1 | s2 | s3 ]        capacity = 4 (a power of two)
//!   slot i:  sequence == position        -> free for the producer at `position`
//!            sequence == position + 1    -> holds the value appended at `position`
//!   tail:    next position a producer claims (compare-and-swap)
//!   head:    next position the drainer reads (only the drainer writes it)
//!   pending: values published minus values drained (may dip below zero
//!            while a drained value's producer has not counted it yet)
//! ```
//!
//! The transition: a producer publishes its slot, then adds one to `pending`;
//! seeing 0 before its add means nobody owes a drain, so it must wake the
//! owner. The drainer subtracts what it took; a positive remainder means a
//! counted value is still in the list (behind a slot whose producer has not
//! published yet, or beyond `max`), so it drains again, and after
//! `DRAIN_ROUNDS_MAX` rounds reports `more` so the caller wakes the owner as
//! for a transition. Because `pending` moves by one per add, it cannot climb
//! from <= 0 (where the last drain left it) to > 0 without an add that saw
//! exactly 0: no value is left in the list without a wake after it.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// Largest capacity: 65536 entries covers the deepest queue a transport has
/// in flight (CQ_DEPTH_MAX).
pub const QUEUE_CAPACITY_MAX: usize = 1 << 16;

/// Drain rounds before a drain gives up on a slot still being published:
/// the producer is between two stores, so a few rounds almost always see it.
const DRAIN_ROUNDS_MAX: usize = 4;

struct Slot<T> {
    sequence: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded multi-producer/single-drainer queue of `Copy` values.
pub struct BoundedQueue<T: Copy + Send> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    tail: AtomicUsize,
    head: AtomicUsize,
    pending: AtomicIsize,
    draining: AtomicBool,
}

// SAFETY: a slot's value is written only by the producer that claimed its
// position (compare-and-swap on tail) before it publishes the sequence with
// Release, and read only by the single drainer after an Acquire load of that
// sequence; the drainer hands the slot back with a Release store.
unsafe impl<T: Copy + Send> Sync for BoundedQueue<T> {}
// SAFETY: as above; the values themselves are Send.
unsafe impl<T: Copy + Send> Send for BoundedQueue<T> {}

/// Wakes the owner of a queue (on the transition, or after a drain that
/// left values behind). Called on producer threads: it must only signal.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Values handed to the visitor.
    pub count: usize,
    /// Values remain that this drain could not take: the caller must make
    /// sure the owner drains again (wake it as for a transition).
    pub more: bool,
}

impl<T: Copy + Send> BoundedQueue<T> {
    /// A queue holding at most `capacity` values (a power of two, 2..=MAX).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two() && (2..=QUEUE_CAPACITY_MAX).contains(&capacity), "capacity {capacity}");
        let slots = (0..capacity).map(|index| Slot { sequence: AtomicUsize::new(index), value: UnsafeCell::new(MaybeUninit::uninit()) }).collect();
        BoundedQueue {
            slots,
            mask: capacity - 1,
            tail: AtomicUsize::new(0),
            head: AtomicUsize::new(0),
            pending: AtomicIsize::new(0),
            draining: AtomicBool::new(false),
        }
    }

    /// How many values the queue can hold.
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
    /// Ok(true): the queue went empty -> non-empty, the caller wakes the owner.
    /// Err(value): every slot is taken.
    pub fn append(&self, value: T) -> Result<bool, T> {
        let position = self.claim().ok_or(value)?;
        Ok(self.publish(position, value))
    }

    /// Claims the next position, or None when full.
    fn claim(&self) -> Option<usize> {
        let mut position = self.tail.load(Ordering::Relaxed);
        loop {
            let sequence = self.slots[position & self.mask].sequence.load(Ordering::Acquire);
            let lag = sequence as isize - position as isize;
            if lag == 0 {
                match self.tail.compare_exchange_weak(position, position + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return Some(position),
                    Err(current) => position = current,
                }
            } else if lag < 0 {
                return None;
            } else {
                position = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Publishes a claimed position, then counts it; true on the transition.
    fn publish(&self, position: usize, value: T) -> bool {
        let slot = &self.slots[position & self.mask];
        // SAFETY: this thread claimed `position`; the drainer does not read
        // the slot until the sequence below says it is published.
        unsafe { (*slot.value.get()).write(value) };
        slot.sequence.store(position + 1, Ordering::Release);
        self.pending.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// Hands up to `max` values to `visit`, oldest first.
    /// Only one thread may drain at a time (a programmer error otherwise).
    pub fn drain(&self, max: usize, mut visit: impl FnMut(T)) -> Drained {
        let already = self.draining.swap(true, Ordering::Acquire);
        assert!(!already, "a bounded queue drained by two threads at once");
        let mut count = 0;
        let mut more = true;
        for _ in 0..DRAIN_ROUNDS_MAX {
            let taken = self.take(max - count, &mut visit);
            count += taken;
            let remaining = self.pending.fetch_sub(taken as isize, Ordering::AcqRel) - taken as isize;
            if remaining <= 0 {
                more = false;
                break;
            }
            if count == max {
                break;
            }
            std::hint::spin_loop();
        }
        self.draining.store(false, Ordering::Release);
        Drained { count, more }
    }

    /// Takes the published values from head on, at most `max`.
    fn take(&self, max: usize, visit: &mut impl FnMut(T)) -> usize {
        let mut taken = 0;
        let mut position = self.head.load(Ordering::Relaxed);
        while taken < max {
            let slot = &self.slots[position & self.mask];
            if slot.sequence.load(Ordering::Acquire) != position + 1 {
                break; // empty, or a producer has not published yet
            }
            // SAFETY: the Acquire load above saw the producer's publication.
            let value = unsafe { (*slot.value.get()).assume_init() };
            slot.sequence.store(position + self.capacity(), Ordering::Release);
            position += 1;
            self.head.store(position, Ordering::Release);
            taken += 1;
            visit(value);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn values_drain_in_append_order_and_only_the_first_append_is_a_transition() {
        let queue = BoundedQueue::new(8);
        let transitions: Vec<bool> = (1..=5u64).map(|value| queue.append(value).unwrap()).collect();
        assert_eq!(transitions, vec![true, false, false, false, false]);
        let mut seen = Vec::new();
        assert_eq!(queue.drain(3, |value| seen.push(value)), Drained { count: 3, more: true });
        assert_eq!(queue.drain(100, |value| seen.push(value)), Drained { count: 2, more: false });
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        assert!(queue.is_empty());
        assert_eq!(queue.append(6), Ok(true), "empty again: the next append is a transition");
    }

    #[test]
    fn a_full_queue_refuses_the_value_and_accepts_again_after_a_drain() {
        let queue = BoundedQueue::new(4);
        for value in 0..4u64 {
            queue.append(value).unwrap();
        }
        assert_eq!(queue.append(99), Err(99));
        assert_eq!(queue.drain(1, |value| assert_eq!(value, 0)).count, 1);
        assert_eq!(queue.append(4), Ok(false), "still non-empty: no transition");
        let mut seen = Vec::new();
        queue.drain(usize::MAX, |value| seen.push(value));
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }

    #[test]
    fn wrapping_many_times_keeps_every_value() {
        let queue = BoundedQueue::new(2);
        for round in 0..10_000u64 {
            assert_eq!(queue.append(round), Ok(true));
            assert_eq!(queue.drain(1, |value| assert_eq!(value, round)), Drained { count: 1, more: false });
        }
        assert!(queue.is_empty());
    }

    /// A value published behind a slot whose producer has claimed but not
    /// published: the drain cannot reach it and must say so (`more`), and
    /// the late producer's count is not a second transition.
    #[test]
    fn a_drain_stopped_at_an_unpublished_slot_reports_more() {
        let queue = BoundedQueue::new(8);
        let slow = queue.claim().unwrap();
        assert_eq!(queue.append(2u64), Ok(true));
        assert_eq!(queue.drain(usize::MAX, |_| panic!("the head slot is not published")), Drained { count: 0, more: true });
        assert!(!queue.publish(slow, 1), "pending was 1: not a transition");
        let mut seen = Vec::new();
        assert_eq!(queue.drain(usize::MAX, |value| seen.push(value)), Drained { count: 2, more: false });
        assert_eq!(seen, vec![1, 2]);
    }

    /// A drain that takes a value whose producer has not counted it yet
    /// leaves pending below zero; the late count brings it back to zero
    /// without a transition, and the next append is one again.
    #[test]
    fn a_value_drained_before_it_was_counted_does_not_wake_anyone() {
        let queue = BoundedQueue::new(8);
        let position = queue.claim().unwrap();
        let slot = &queue.slots[position & queue.mask];
        // SAFETY: this test claimed the position.
        unsafe { (*slot.value.get()).write(7u64) };
        slot.sequence.store(position + 1, Ordering::Release);
        assert_eq!(queue.drain(usize::MAX, |value| assert_eq!(value, 7)), Drained { count: 1, more: false });
        assert_eq!(queue.pending.fetch_add(1, Ordering::AcqRel), -1, "the late count is not a transition");
        assert_eq!(queue.append(8), Ok(true));
    }

    #[test]
    #[should_panic(expected = "drained by two threads at once")]
    fn a_second_drainer_during_a_drain_is_a_programmer_error() {
        let queue = BoundedQueue::new(4);
        queue.append(1u64).unwrap();
        queue.drain(1, |_| {
            queue.drain(1, |_| {});
        });
    }

    #[test]
    #[should_panic]
    fn capacity_must_be_a_power_of_two() {
        BoundedQueue::<u64>::new(3);
    }

    /// Three producers append 150 000 values; the drainer drains ONLY when
    /// woken (a transition, or its own `more`), like a transport's owner. A
    /// lost wake-up leaves values in the queue with the drainer asleep: the
    /// receive times out and the test fails. Also checks every value arrives
    /// once, in each producer's order, and that wakes are per burst, not per
    /// value.
    #[test]
    fn producers_never_leave_a_value_without_a_wake() {
        const PRODUCERS: u64 = 3;
        const PER_PRODUCER: u64 = 50_000;
        let queue = Arc::new(BoundedQueue::new(256));
        let (wake, woken) = mpsc::channel::<()>();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (queue, wake) = (queue.clone(), wake.clone());
                thread::spawn(move || {
                    for sequence in 0..PER_PRODUCER {
                        let mut value = producer << 32 | sequence;
                        loop {
                            match queue.append(value) {
                                Ok(true) => wake.send(()).unwrap(),
                                Ok(false) => {}
                                Err(back) => {
                                    value = back;
                                    thread::yield_now();
                                    continue;
                                }
                            }
                            break;
                        }
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut last_per_producer = vec![None::<u64>; PRODUCERS as usize];
        let mut wakes = 0u64;
        while seen.len() < (PRODUCERS * PER_PRODUCER) as usize {
            woken.recv_timeout(Duration::from_secs(5)).expect("values left in the queue without a wake");
            wakes += 1;
            let drained = queue.drain(64, |value| {
                let (producer, sequence) = ((value >> 32) as usize, value & 0xffff_ffff);
                assert!(last_per_producer[producer].map_or(true, |last| sequence > last), "producer {producer} out of order");
                last_per_producer[producer] = Some(sequence);
                assert!(seen.insert(value), "value {value:#x} drained twice");
            });
            if drained.more {
                wake.send(()).unwrap();
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(queue.is_empty());
        assert_eq!(queue.drain(usize::MAX, |_| panic!("nothing left")).count, 0);
        assert!(wakes < PRODUCERS * PER_PRODUCER, "{wakes} wakes: one per value, not per transition");
    }
}
