//! A bounded, lock-free list that many threads push to and any thread takes
//! whole, on the model of Linux's llist (`llist_add`: one atomic step onto a
//! singly-linked stack; `llist_del_all`: one swap takes the batch), with its
//! nodes pre-allocated in a fixed pool.
//!
//! Why: the release list (Send completions) must take an append from a
//! completion thread without a lock, tell that append whether it took the
//! list from empty to non-empty (that one wakes the owner), and let the
//! thread(s) serving the transport take everything in one step, several of
//! them at once when workers share a transport.
//!
//! Life: owned by the object that embeds it (`ReleaseList`); `push` and
//! `drain` may run on any thread at once. Nodes are allocated once with the
//! list and freed with it: nothing is allocated after `new`.
//!
//! Layout:
//!
//! ```text
//!   nodes: [ n0 n1 | n2 n3 | n4 n5 | n6 n7 ]   capacity = 8, each in exactly one of:
//!   free:  [ s0    | s1    | s2    | s3    ]   free stacks, one per quarter of
//!                                              the nodes: (first, count, tag)
//!   head:  n2 -> n0 -> ∅           pushed, newest first (`next` = pushed before)
//!   held:  n5 -> ∅                 left by a drain bounded by `max`, oldest first
//!   (or taken: a producer between its pop and its push, a drainer visiting)
//! ```
//!
//! push: pop a node from the free stack its thread maps to, or from the next
//! non-empty one (compare-and-swap; the tag changes on every swap of a
//! stack, so a node popped and given back in between fails it), write the
//! value, mark its link LINKING, swap the node into `head`, then write the
//! link to the node it replaced. The push whose swap replaced an empty head
//! is the empty -> non-empty transition: no counter beside it. Every stack
//! seen empty refuses the value (full).
//!
//! Why a swap, not llist's compare-and-swap loop: a swap always succeeds,
//! so two producers never retry on each other (the loop's compare-and-swap
//! was the push's hottest instruction in a profile with two producers). The price is
//! the moment between the swap and the link: a drain that meets LINKING
//! waits for that one store (spinning, then yielding should the producer
//! have been preempted there).
//!
//! drain: swap `held` and `head` with empty (whatever another drainer took
//! is its own), reverse the pushed chain to oldest first behind the held
//! one, visit up to `max`, give the visited nodes back to their stacks (one
//! compare-and-swap per stack), and put the rest on `held`, reporting `more`.
//!
//! Why several free stacks: with one, two completion threads would fight for
//! its word and for each other's nodes on every push; with one each, a
//! thread pops from a word and nodes that stay in its own cache, and only
//! `head` is shared (as in llist, where the node is inside the object).
//!
//! No lost wake-up: a value is on `head` from its push until a drain swaps it
//! out; the push that made `head` non-empty was told so after its value was
//! visible, and a drain started after that swaps out every value pushed
//! before. Values a drain leaves on `held` are reported (`more`), so the
//! caller wakes the owner as for a transition.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Largest capacity: 65536 nodes covers the deepest Send Queue a transport
/// has in flight (CQ_DEPTH_MAX).
pub const LIST_CAPACITY_MAX: usize = 1 << 16;

/// Free stacks the nodes are split into (contiguous quarters): a thread pops
/// from its own, so up to this many producers do not share one word.
const FREE_STACKS: usize = 4;

/// `next` / `head` / `held` value of no node.
const NONE: u32 = (1 << INDEX_BITS) - 1;
/// `next` of a node swapped onto `head` whose producer has not yet written
/// its link (the store right after the swap).
const LINKING: u32 = NONE - 1;
/// Spins a drain waits for a link before it yields: the producer is two
/// stores away from writing it unless it was preempted.
const LINK_SPINS_MAX: u32 = 128;
/// Bits of the free stack's head: the first node's index (or NONE) ...
const INDEX_BITS: u32 = 17;
/// ... how many nodes are free (0..=LIST_CAPACITY_MAX) ...
const COUNT_BITS: u32 = 17;
/// ... and the rest a tag bumped by every change: a popper preempted for
/// 2^30 changes of a free stack could be fooled, which no thread is.
const TAG_SHIFT: u32 = INDEX_BITS + COUNT_BITS;

struct Node<T> {
    next: AtomicU32,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The free stack's head, packed in one word so it changes in one swap.
#[derive(Clone, Copy)]
struct FreeHead {
    first: u32,
    count: u32,
    tag: u64,
}

impl FreeHead {
    fn unpack(word: u64) -> FreeHead {
        FreeHead {
            first: (word & ((1 << INDEX_BITS) - 1)) as u32,
            count: ((word >> INDEX_BITS) & ((1 << COUNT_BITS) - 1)) as u32,
            tag: word >> TAG_SHIFT,
        }
    }

    fn pack(self) -> u64 {
        (self.tag << TAG_SHIFT) | (u64::from(self.count) << INDEX_BITS) | u64::from(self.first)
    }

    /// The head after `count` nodes from `first` were pushed on (negative:
    /// popped), with a new tag.
    fn changed(self, first: u32, count: i64) -> u64 {
        let tag = (self.tag + 1) & ((1 << (64 - TAG_SHIFT)) - 1);
        FreeHead { first, count: (i64::from(self.count) + count) as u32, tag }.pack()
    }
}

/// A word alone on its cache line: threads that use different ones do not
/// invalidate each other's caches.
#[repr(align(64))]
struct Padded<A>(A);

/// A bounded multi-producer/multi-drainer list of `Copy` values.
pub struct BoundedList<T: Copy + Send> {
    nodes: Box<[Node<T>]>,
    free: [Padded<AtomicU64>; FREE_STACKS],
    head: Padded<AtomicU32>,
    held: AtomicU32,
}

/// Nodes a drain gives back to one free stack, linked first to last.
#[derive(Clone, Copy)]
struct Returned {
    first: u32,
    last: u32,
    count: usize,
}

/// A number per thread, for the free stack it pops from.
static THREADS_SEEN: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The free stack this thread pops from first: threads take turns.
    static FREE_STACK_OF_THREAD: usize = THREADS_SEEN.fetch_add(1, Ordering::Relaxed) % FREE_STACKS;
}

// SAFETY: a node's value is written only by the thread that popped the node
// from `free` (exclusive until its push), and read only by the drainer whose
// swap of `head` or `held` took it (exclusive until it gives the node back to
// `free` with Release); every hand-over is a Release store or swap read by an
// Acquire one (pushes and swaps of `head` form one release sequence).
unsafe impl<T: Copy + Send> Sync for BoundedList<T> {}
// SAFETY: as above; the values themselves are Send.
unsafe impl<T: Copy + Send> Send for BoundedList<T> {}

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Values handed to the visitor.
    pub count: usize,
    /// Values remain that this drain did not take (beyond `max`): the
    /// caller must make sure the owner drains again (wake it).
    pub more: bool,
}

impl<T: Copy + Send> BoundedList<T> {
    /// A list holding at most `capacity` values (2..=LIST_CAPACITY_MAX).
    pub fn new(capacity: usize) -> Self {
        assert!((2..=LIST_CAPACITY_MAX).contains(&capacity), "capacity {capacity}");
        let nodes: Box<[Node<T>]> =
            (0..capacity).map(|_| Node { next: AtomicU32::new(NONE), value: UnsafeCell::new(MaybeUninit::uninit()) }).collect();
        let list = BoundedList {
            nodes,
            free: std::array::from_fn(|_| Padded(AtomicU64::new(FreeHead { first: NONE, count: 0, tag: 0 }.pack()))),
            head: Padded(AtomicU32::new(NONE)),
            held: AtomicU32::new(NONE),
        };
        let mut returned = [None; FREE_STACKS];
        (0..capacity as u32).for_each(|index| list.link_for_return(&mut returned, index));
        list.return_nodes(&returned);
        list
    }

    /// The free stack a node belongs to: its quarter of the nodes.
    fn free_stack_of(&self, index: u32) -> usize {
        index as usize * FREE_STACKS / self.capacity()
    }

    /// How many values the list can hold.
    pub fn capacity(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes not free: values pushed and not yet drained, counting pushes and
    /// drains in progress (a snapshot; exact when none is).
    pub fn len(&self) -> usize {
        let free: usize = self.free.iter().map(|stack| FreeHead::unpack(stack.0.load(Ordering::Acquire)).count as usize).sum();
        self.capacity().saturating_sub(free)
    }

    /// True when no value waits on the list (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.head.0.load(Ordering::Acquire) == NONE && self.held.load(Ordering::Acquire) == NONE
    }

    /// Appends `value` without locking; any thread may call it.
    /// Ok(true): this push found the list empty (the caller wakes the owner).
    /// Err(value): every node is taken (pushed and not yet drained, or being
    /// pushed or drained).
    pub fn push(&self, value: T) -> Result<bool, T> {
        let Some(index) = self.pop_free() else { return Err(value) };
        let node = &self.nodes[index as usize];
        // SAFETY: the node was just popped from `free`: this thread owns it.
        unsafe { (*node.value.get()).write(value) };
        node.next.store(LINKING, Ordering::Relaxed);
        let before = self.head.0.swap(index, Ordering::AcqRel);
        node.next.store(before, Ordering::Release);
        Ok(before == NONE)
    }

    /// Takes a node from this thread's free stack, or the next non-empty
    /// one. None only when every node was taken at one moment: two scans
    /// in a row saw every stack empty and unchanged (a tag moves on every
    /// change), so the stacks were all empty together between the scans.
    fn pop_free(&self) -> Option<u32> {
        let home = FREE_STACK_OF_THREAD.with(|stack| *stack);
        let mut previous_scan = None;
        loop {
            let mut scan = [0; FREE_STACKS];
            for step in 0..FREE_STACKS {
                let stack = (home + step) % FREE_STACKS;
                match self.pop_free_from(&self.free[stack].0) {
                    Ok(index) => return Some(index),
                    Err(empty) => scan[stack] = empty,
                }
            }
            if previous_scan == Some(scan) {
                return None;
            }
            previous_scan = Some(scan);
        }
    }

    /// Pops a node, or returns the word that showed the stack empty.
    fn pop_free_from(&self, stack: &AtomicU64) -> Result<u32, u64> {
        let mut word = stack.load(Ordering::Acquire);
        loop {
            let free = FreeHead::unpack(word);
            if free.first == NONE {
                return Err(word);
            }
            // Stale if another thread popped `first` meanwhile: then the tag
            // has changed and the swap below fails.
            let next = self.nodes[free.first as usize].next.load(Ordering::Relaxed);
            match stack.compare_exchange_weak(word, free.changed(next, -1), Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Ok(free.first),
                Err(current) => word = current,
            }
        }
    }

    /// Links a node this thread owns behind the others going back to its stack.
    fn link_for_return(&self, returned: &mut [Option<Returned>; FREE_STACKS], index: u32) {
        let chain = &mut returned[self.free_stack_of(index)];
        match chain {
            None => *chain = Some(Returned { first: index, last: index, count: 1 }),
            Some(chain) => {
                self.nodes[chain.last as usize].next.store(index, Ordering::Relaxed);
                chain.last = index;
                chain.count += 1;
            }
        }
    }

    /// Gives linked nodes back to their free stacks, one swap per stack.
    fn return_nodes(&self, returned: &[Option<Returned>; FREE_STACKS]) {
        for (stack, chain) in self.free.iter().zip(returned) {
            let Some(Returned { first, last, count }) = *chain else { continue };
            let mut word = stack.0.load(Ordering::Relaxed);
            loop {
                let free = FreeHead::unpack(word);
                self.nodes[last as usize].next.store(free.first, Ordering::Relaxed);
                match stack.0.compare_exchange_weak(word, free.changed(first, count as i64), Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(current) => word = current,
                }
            }
        }
    }

    /// Takes every value there is and hands up to `max` to `visit`, oldest
    /// first; the rest stays on the list (`more`). Any number of threads may
    /// drain at once: each gets values no other drain gets.
    pub fn drain(&self, max: usize, mut visit: impl FnMut(T)) -> Drained {
        let (mut cursor, mut count) = (self.take_all(), 0);
        let mut returned = [None; FREE_STACKS];
        while cursor != NONE && count < max {
            let node = &self.nodes[cursor as usize];
            let next = node.next.load(Ordering::Relaxed);
            // SAFETY: the swaps in take_all gave this drain the whole chain.
            visit(unsafe { (*node.value.get()).assume_init() });
            self.link_for_return(&mut returned, cursor);
            count += 1;
            cursor = next;
        }
        self.return_nodes(&returned);
        let more = cursor != NONE;
        if more {
            self.hold(cursor);
        }
        Drained { count, more }
    }

    /// Swaps out `held` and `head`; returns one chain, oldest first.
    fn take_all(&self) -> u32 {
        let held = self.held.swap(NONE, Ordering::Acquire);
        let pushed = self.reverse(self.head.0.swap(NONE, Ordering::Acquire));
        if held == NONE {
            return pushed;
        }
        self.nodes[self.last_of(held) as usize].next.store(pushed, Ordering::Relaxed);
        held
    }

    /// Reverses a chain this thread owns; returns its new first node.
    fn reverse(&self, mut cursor: u32) -> u32 {
        let mut reversed = NONE;
        while cursor != NONE {
            let node = &self.nodes[cursor as usize];
            let next = self.link_of(node);
            node.next.store(reversed, Ordering::Relaxed);
            reversed = cursor;
            cursor = next;
        }
        reversed
    }

    /// A pushed node's link to the one pushed before it, waiting for its
    /// producer to write it (it is between two stores, unless preempted
    /// there: then yield so it runs).
    fn link_of(&self, node: &Node<T>) -> u32 {
        let mut spins = 0;
        loop {
            let next = node.next.load(Ordering::Acquire);
            if next != LINKING {
                return next;
            }
            if spins < LINK_SPINS_MAX {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// The last node of a chain this thread owns (at most `capacity` steps).
    fn last_of(&self, mut cursor: u32) -> u32 {
        for _ in 0..self.capacity() {
            let next = self.nodes[cursor as usize].next.load(Ordering::Relaxed);
            if next == NONE {
                return cursor;
            }
            cursor = next;
        }
        unreachable!("a chain longer than the list's capacity");
    }

    /// Puts a chain a drain did not visit on `held`, behind any another
    /// drain put there meanwhile.
    fn hold(&self, chain: u32) {
        loop {
            match self.held.compare_exchange(NONE, chain, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(_) => {
                    let other = self.held.swap(NONE, Ordering::Acquire);
                    self.nodes[self.last_of(chain) as usize].next.store(other, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Arc, Mutex};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn values_drain_in_push_order_and_only_the_first_push_is_a_transition() {
        let list = BoundedList::new(8);
        let transitions: Vec<bool> = (1..=5u64).map(|value| list.push(value).unwrap()).collect();
        assert_eq!(transitions, vec![true, false, false, false, false]);
        assert_eq!(list.len(), 5);
        let mut seen = Vec::new();
        assert_eq!(list.drain(3, |value| seen.push(value)), Drained { count: 3, more: true });
        assert_eq!(list.len(), 2);
        assert_eq!(list.push(6), Ok(true), "head was swapped out: a transition");
        assert_eq!(list.drain(100, |value| seen.push(value)), Drained { count: 3, more: false });
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6], "held values come before later pushes");
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
        assert_eq!(list.push(7), Ok(true), "empty again: the next push is a transition");
    }

    #[test]
    fn a_full_list_refuses_the_value_and_accepts_again_after_a_drain() {
        let list = BoundedList::new(4);
        for value in 0..4u64 {
            list.push(value).unwrap();
        }
        assert_eq!(list.push(99), Err(99));
        assert_eq!(list.drain(1, |value| assert_eq!(value, 0)).count, 1);
        assert_eq!(list.push(4), Ok(true), "the pushed chain was swapped out");
        assert_eq!(list.push(5), Err(5), "three held and one pushed: full again");
        let mut seen = Vec::new();
        list.drain(usize::MAX, |value| seen.push(value));
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }

    #[test]
    fn reusing_the_nodes_many_times_keeps_every_value() {
        let list = BoundedList::new(2);
        for round in 0..10_000u64 {
            assert_eq!(list.push(round), Ok(true));
            assert_eq!(list.push(round + 1), Ok(false));
            let mut seen = Vec::new();
            assert_eq!(list.drain(usize::MAX, |value| seen.push(value)), Drained { count: 2, more: false });
            assert_eq!(seen, vec![round, round + 1]);
        }
        assert!(list.is_empty());
    }

    /// A drain may run inside another's visit (two workers on one
    /// transport): each takes what the list held when it swapped.
    #[test]
    fn a_drain_inside_a_drain_takes_only_what_came_after_the_first_swap() {
        let list = BoundedList::new(8);
        list.push(1u64).unwrap();
        list.push(2).unwrap();
        let mut inner = Vec::new();
        let mut outer = Vec::new();
        list.drain(usize::MAX, |value| {
            outer.push(value);
            if value == 1 {
                list.push(3).unwrap();
                list.drain(usize::MAX, |value| inner.push(value));
            }
        });
        assert_eq!((outer, inner), (vec![1, 2], vec![3]));
        assert!(list.is_empty());
    }

    #[test]
    #[should_panic(expected = "capacity")]
    fn capacity_must_be_bounded() {
        BoundedList::<u64>::new(LIST_CAPACITY_MAX + 1);
    }

    /// Three producers push 150 000 values; the drainer drains ONLY when
    /// woken (a transition, or its own `more`), like a transport's owner. A
    /// lost wake-up leaves values in the list with the drainer asleep: the
    /// receive times out and the test fails. Also checks every value arrives
    /// once, in each producer's order, and that wakes are per burst, not per
    /// value.
    #[test]
    fn producers_never_leave_a_value_without_a_wake() {
        const PRODUCERS: u64 = 3;
        const PER_PRODUCER: u64 = 50_000;
        let list = Arc::new(BoundedList::new(256));
        let (wake, woken) = mpsc::channel::<()>();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (list, wake) = (list.clone(), wake.clone());
                thread::spawn(move || {
                    for sequence in 0..PER_PRODUCER {
                        push_retrying(&list, producer << 32 | sequence, || wake.send(()).unwrap());
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut last_per_producer = vec![None::<u64>; PRODUCERS as usize];
        let mut wakes = 0u64;
        while seen.len() < (PRODUCERS * PER_PRODUCER) as usize {
            woken.recv_timeout(Duration::from_secs(5)).expect("values left in the list without a wake");
            wakes += 1;
            let drained = list.drain(64, |value| {
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
        assert!(list.is_empty());
        assert_eq!(list.drain(usize::MAX, |_| panic!("nothing left")).count, 0);
        assert!(wakes < PRODUCERS * PER_PRODUCER, "{wakes} wakes: one per value, not per transition");
    }

    /// Several workers drain one transport's list at once (bounded drains,
    /// so `held` is contended too) while two producers push: every value
    /// arrives exactly once and no node is lost (all free again at the end).
    /// Order across concurrent drainers is not defined (one may visit a
    /// value while another still holds an older one it did not visit).
    #[test]
    fn concurrent_drainers_take_every_value_exactly_once() {
        const PRODUCERS: u64 = 2;
        const DRAINERS: usize = 3;
        const PER_PRODUCER: u64 = 100_000;
        let list = Arc::new(BoundedList::new(64));
        let producing = Arc::new(AtomicUsize::new(PRODUCERS as usize));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (list, producing) = (list.clone(), producing.clone());
                thread::spawn(move || {
                    for sequence in 0..PER_PRODUCER {
                        push_retrying(&list, producer << 32 | sequence, || {});
                    }
                    producing.fetch_sub(1, Ordering::Release);
                })
            })
            .collect();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let drainers: Vec<_> = (0..DRAINERS)
            .map(|drainer| {
                let (list, producing, seen) = (list.clone(), producing.clone(), seen.clone());
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let finished = producing.load(Ordering::Acquire) == 0;
                        let drained = list.drain(1 + drainer * 7, |value| mine.push(value));
                        if finished && drained.count == 0 && !drained.more {
                            break;
                        }
                        if drained.count == 0 {
                            thread::yield_now();
                        }
                    }
                    seen.lock().unwrap().extend(mine);
                })
            })
            .collect();
        producers.into_iter().chain(drainers).for_each(|thread| thread.join().unwrap());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len() as u64, PRODUCERS * PER_PRODUCER, "a value lost or drained twice");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "a value drained twice");
        assert_eq!(list.len(), 0, "every node is free again");
        assert!(list.is_empty());
    }

    fn push_retrying(list: &BoundedList<u64>, value: u64, on_transition: impl Fn()) {
        loop {
            match list.push(value) {
                Ok(true) => return on_transition(),
                Ok(false) => return,
                Err(_) => thread::yield_now(),
            }
        }
    }
}
