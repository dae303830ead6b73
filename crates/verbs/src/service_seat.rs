//! A worker seat's area: the memory one worker thread and the verbs core
//! pass an RPC through, so that a call costs one crossing from JavaScript
//! into native code and back instead of five.
//!
//! Why: each JavaScript-to-native call (a take, the next Receive, a send
//! context, the post, the release) cost arguments, a result object or
//! number and, in the emulated lab, microseconds of CPU. Here the take
//! leaves the call it received in the mailbox (slot and length of its
//! Receive, and for a plain call the fields of its transport header,
//! service_call_header.rs) and returns only the transport; the worker encodes an inline
//! reply (or RDMA_ERROR) into the staging bytes; one native call then gets
//! the send context (with the seed's drain points), copies the staged reply
//! into it, posts it, releases the RPC and takes the next call, leaving the
//! next call in the mailbox.
//!
//! Batches: a take may receive up to `CALLS_PER_TAKE_MAX` calls of one
//! transport at once (the queue's `calls_per_take`), so that several queued
//! calls cost one crossing, and their inline replies one chained post (one
//! doorbell: for rxe, one system call that runs the send path for all).
//!
//! Layout: `MAILBOX_WORDS` u32 words — `CALLS` (calls the take left), then
//! `CALL_WORDS` per call from `call_word(index, field)` (`SLOT`,
//! `BYTE_LENGTH`, `PLAIN_HEADER_BYTES`, `PLAIN_XID`, `PLAIN_CREDITS`), then
//! `REPLY_LENGTHS`: the lengths of the replies the worker staged, in order,
//! end to end in the staging bytes that follow the mailbox
//! (`STAGING_BYTES`: at least one reply of a send context's largest buffer).
//!
//! Life: created by the first worker on the seat (`ServiceQueue::seat_area`)
//! and kept by the queue, so a replacement worker on the seat gets the same
//! area; the memory goes with the queue and the last isolate's ArrayBuffer
//! over it. Only the worker on the seat (its JavaScript and its native
//! calls, one at a time on one thread) reads or writes it.

use crate::service_transport::{AreaMemory, BUFFER_BYTES_MAX};
use std::sync::Arc;

/// Most calls one take receives (the mailbox holds this many).
pub const CALLS_PER_TAKE_MAX: usize = 8;
/// Mailbox word: how many calls the last take left (1..=CALLS_PER_TAKE_MAX).
pub const CALLS: usize = 0;
/// Field of a call's words: the Receive slot of the call.
pub const SLOT: usize = 0;
/// Field: that Receive's byte length.
pub const BYTE_LENGTH: usize = 1;
/// Field: the bytes of the call's transport header if it is plain
/// (service_call_header.rs), 0 if the worker must decode it.
pub const PLAIN_HEADER_BYTES: usize = 2;
/// Fields of a plain call: its xid and the credits it asked for (host order).
pub const PLAIN_XID: usize = 3;
pub const PLAIN_CREDITS: usize = 4;
/// Words of one call.
pub const CALL_WORDS: usize = 5;
/// First of the `CALLS_PER_TAKE_MAX` words of staged reply lengths.
pub const REPLY_LENGTHS: usize = 1 + CALLS_PER_TAKE_MAX * CALL_WORDS;
/// Words of the mailbox (the staging bytes follow it).
pub const MAILBOX_WORDS: usize = REPLY_LENGTHS + CALLS_PER_TAKE_MAX;
/// Bytes of the staging area: an inline reply never exceeds a send context's buffer.
pub const STAGING_BYTES: usize = BUFFER_BYTES_MAX as usize;

/// The mailbox word of call `index`'s `field`.
pub const fn call_word(index: usize, field: usize) -> usize {
    1 + index * CALL_WORDS + field
}

/// One seat's mailbox and staging bytes.
pub struct SeatArea {
    memory: Arc<AreaMemory>,
}

impl Default for SeatArea {
    fn default() -> SeatArea {
        SeatArea { memory: AreaMemory::new(MAILBOX_WORDS * 4 + STAGING_BYTES) }
    }
}

impl SeatArea {
    /// The memory, for the worker's ArrayBuffer over it.
    pub fn memory(&self) -> &Arc<AreaMemory> {
        &self.memory
    }

    /// Writes mailbox word `word`.
    pub fn put(&self, word: usize, value: u32) {
        assert!(word < MAILBOX_WORDS);
        // SAFETY: inside the area (word < MAILBOX_WORDS); only the seat's own thread touches it (see the top).
        unsafe { self.memory.pointer().cast::<u32>().add(word).write_unaligned(value) };
    }

    /// Reads mailbox word `word`.
    pub fn get(&self, word: usize) -> u32 {
        assert!(word < MAILBOX_WORDS);
        // SAFETY: as in `put`.
        unsafe { self.memory.pointer().cast::<u32>().add(word).read_unaligned() }
    }

    /// The first `length` staged bytes (the worker wrote them before its call).
    pub fn staged(&self, length: usize) -> &[u8] {
        assert!(length <= STAGING_BYTES, "{length} staged bytes beyond the staging area");
        // SAFETY: inside the area; the seat's thread wrote them and is now in this native call, so nothing changes them.
        unsafe { std::slice::from_raw_parts(self.memory.pointer().add(MAILBOX_WORDS * 4), length) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_words_and_staging_bytes_do_not_overlap() {
        let seat = SeatArea::default();
        assert_eq!(seat.memory().length(), MAILBOX_WORDS * 4 + STAGING_BYTES);
        seat.put(CALLS, 7);
        seat.put(MAILBOX_WORDS - 1, u32::MAX);
        assert_eq!((seat.get(CALLS), seat.get(MAILBOX_WORDS - 1)), (7, u32::MAX));
        assert_eq!(call_word(CALLS_PER_TAKE_MAX - 1, PLAIN_CREDITS) + 1, REPLY_LENGTHS, "the last call's words end where the reply lengths begin");
        assert!(seat.staged(STAGING_BYTES).iter().all(|byte| *byte == 0), "the mailbox is not part of the staged bytes");
    }
}
