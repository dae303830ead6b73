//! The completion path alone, on the host (issue 5's benchmark): the
//! lock-free release list against a mutex-guarded shared queue, 2 producer
//! threads (completion threads appending finished Sends) and 1 drainer (the
//! thread serving the transport, draining in batches).
//!
//! Both queues hold the same number of entries and do the same work: a
//! producer appends and, on the empty -> non-empty transition, wakes the
//! owner (unparks the drainer thread); the drainer takes everything there is,
//! sums it, and parks when it found nothing (as the transport's owner sleeps
//! until the transition wakes it; a spinning drainer would only measure who
//! wins a CPU on a small machine). The lock-free side is `BoundedList`, the
//! whole of `ReleaseList` but for its full-list assertion (here a full list
//! makes the producer retry, as the mutex side does): a node popped from
//! its pool and one compare-and-swap per append, one swap per drain. The
//! mutex side is the best a shared queue behind a lock does: a std
//! `Mutex<VecDeque>`, one value per lock for a producer (a completion
//! appends one Send), the whole batch per lock for the drainer (it swaps the
//! queue with an empty one it keeps).
//!
//! Run: `pnpm --filter @roce-rpc/verbs bench:host` (or `cargo run --release
//! --example release_list_contention`). Prints each run's throughput, the
//! medians, and the median of the per-run ratios; RUNS runs of each, the two
//! kinds alternating, in this one process.

use roce_verbs::bounded_list::BoundedList;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Producers: two completion threads, as in the issue.
const PRODUCERS: usize = 2;
/// Values each producer appends per run: long enough (≈ 10-100 ms) to
/// average out scheduling, short enough for several runs.
const VALUES_PER_PRODUCER: u64 = 1_000_000;
/// Entries in either queue: the release list's largest capacity, the deepest
/// Send Queue; a producer that finds the queue full yields and retries.
const CAPACITY: usize = 1 << 16;
/// Runs of each kind; the report is the median.
const RUNS: usize = 9;
/// Longest the drainer sleeps without a wake.
const PARK_MAX: Duration = Duration::from_millis(10);

/// A queue as the benchmark drives it.
trait SharedQueue: Send + Sync + 'static {
    /// Appends; Err when full. Ok(true) on the empty -> non-empty transition.
    fn append(&self, value: u64) -> Result<bool, u64>;
    /// Takes everything there is; returns (count, sum, more: some are left
    /// that this drain could not take, so do not sleep).
    fn drain_all(&self) -> (u64, u64, bool);
}

struct LockFree(BoundedList<u64>);

impl SharedQueue for LockFree {
    fn append(&self, value: u64) -> Result<bool, u64> {
        self.0.push(value)
    }
    fn drain_all(&self) -> (u64, u64, bool) {
        let mut sum = 0;
        let drained = self.0.drain(usize::MAX, |value| sum += value);
        (drained.count as u64, sum, drained.more)
    }
}

/// The design the seed replaced, at its best: one shared queue behind one
/// lock; a producer takes the lock per value, the drainer per batch.
struct Locked {
    queue: Mutex<VecDeque<u64>>,
    /// The drainer's empty queue, swapped in for the full one (only the
    /// drainer locks it: no contention, no allocation per drain).
    spare: Mutex<VecDeque<u64>>,
}

impl Locked {
    fn new() -> Locked {
        Locked { queue: Mutex::new(VecDeque::with_capacity(CAPACITY)), spare: Mutex::new(VecDeque::with_capacity(CAPACITY)) }
    }
}

impl SharedQueue for Locked {
    fn append(&self, value: u64) -> Result<bool, u64> {
        let mut queue = self.queue.lock().unwrap();
        if queue.len() == CAPACITY {
            return Err(value);
        }
        queue.push_back(value);
        Ok(queue.len() == 1)
    }
    fn drain_all(&self) -> (u64, u64, bool) {
        let mut batch = self.spare.lock().unwrap();
        std::mem::swap(&mut *self.queue.lock().unwrap(), &mut *batch);
        let (count, sum) = (batch.len() as u64, batch.iter().sum());
        batch.clear();
        (count, sum, false)
    }
}

/// CPU time this thread has used (user + system).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// What one run measured.
struct Measured {
    /// Values appended and drained per second of wall-clock time.
    per_second: f64,
    /// Values per second of CPU time used by the three threads together
    /// (locks, futex waits and wakes included): what the path costs, apart
    /// from the time other processes on a shared machine took the cores.
    per_cpu_second: f64,
    wakes: usize,
}

/// One run of `queue`.
fn run(queue: Arc<dyn SharedQueue>) -> Measured {
    let wakes = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(PRODUCERS + 1));
    let drainer = thread::current();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (queue, wakes, start, drainer) = (queue.clone(), wakes.clone(), start.clone(), drainer.clone());
            thread::spawn(move || {
                start.wait();
                let cpu_started = thread_cpu_time();
                for value in 1..=VALUES_PER_PRODUCER {
                    loop {
                        match queue.append(value) {
                            Ok(true) => {
                                wakes.fetch_add(1, Ordering::Relaxed);
                                drainer.unpark();
                            }
                            Ok(false) => {}
                            Err(_) => {
                                thread::yield_now();
                                continue;
                            }
                        }
                        break;
                    }
                }
                thread_cpu_time() - cpu_started
            })
        })
        .collect();
    let expected_count = PRODUCERS as u64 * VALUES_PER_PRODUCER;
    let expected_sum = PRODUCERS as u64 * VALUES_PER_PRODUCER * (VALUES_PER_PRODUCER + 1) / 2;
    start.wait();
    let started = Instant::now();
    let cpu_started = thread_cpu_time();
    let (mut count, mut sum) = (0, 0);
    while count < expected_count {
        let (drained, drained_sum, more) = queue.drain_all();
        if drained == 0 && !more {
            // The timeout only bounds a run if a wake were lost (the queue's
            // own tests prove none is); it never fires in a correct run.
            thread::park_timeout(PARK_MAX);
        }
        count += drained;
        sum += drained_sum;
    }
    let elapsed = started.elapsed();
    let mut cpu = thread_cpu_time() - cpu_started;
    for producer in producers {
        cpu += producer.join().unwrap();
    }
    assert_eq!((count, sum), (expected_count, expected_sum), "a value was lost or drained twice");
    Measured {
        per_second: expected_count as f64 / elapsed.max(Duration::from_nanos(1)).as_secs_f64(),
        per_cpu_second: expected_count as f64 / cpu.max(Duration::from_nanos(1)).as_secs_f64(),
        wakes: wakes.load(Ordering::Relaxed),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    println!("release list vs mutex-guarded queue: {PRODUCERS} producers x {VALUES_PER_PRODUCER} values, 1 drainer, capacity {CAPACITY}, {RUNS} runs each");
    let (mut wall, mut cpu, mut wall_ratios, mut cpu_ratios) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()), Vec::new(), Vec::new());
    for round in 1..=RUNS {
        let free = run(Arc::new(LockFree(BoundedList::new(CAPACITY))));
        let locked = run(Arc::new(Locked::new()));
        println!(
            "run {round}: lock-free {:>6.2} M/s {:>6.2} M/cpu-s ({} wakes) | mutex {:>6.2} M/s {:>6.2} M/cpu-s ({} wakes) | ratio {:.2}x, per cpu-s {:.2}x",
            free.per_second / 1e6,
            free.per_cpu_second / 1e6,
            free.wakes,
            locked.per_second / 1e6,
            locked.per_cpu_second / 1e6,
            locked.wakes,
            free.per_second / locked.per_second,
            free.per_cpu_second / locked.per_cpu_second,
        );
        wall.0.push(free.per_second);
        wall.1.push(locked.per_second);
        cpu.0.push(free.per_cpu_second);
        cpu.1.push(locked.per_cpu_second);
        wall_ratios.push(free.per_second / locked.per_second);
        cpu_ratios.push(free.per_cpu_second / locked.per_cpu_second);
    }
    println!(
        "median wall clock: lock-free {:.2} M values/s, mutex {:.2} M values/s, ratio (median of runs) {:.2}x",
        median(&mut wall.0) / 1e6,
        median(&mut wall.1) / 1e6,
        median(&mut wall_ratios)
    );
    println!(
        "median per CPU second: lock-free {:.2} M values/cpu-s, mutex {:.2} M values/cpu-s, ratio (median of runs) {:.2}x (target >= 3x)",
        median(&mut cpu.0) / 1e6,
        median(&mut cpu.1) / 1e6,
        median(&mut cpu_ratios)
    );
}
