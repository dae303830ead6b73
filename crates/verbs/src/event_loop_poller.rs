//! EventLoopPoller: watches a file descriptor for readability from the libuv
//! event loop of the JavaScript thread that created it (`uv_poll`), so the
//! readiness is handled on that very thread, with no thread hop and no
//! threadsafe-function queue in between.
//!
//! Life: created by a binding on a JavaScript thread, over that thread's
//! loop (`napi_get_uv_event_loop`). The callback runs only on that thread,
//! only between `start` and `stop`. `stop` (or Drop) ends the watch at once
//! and hands the uv handle to `uv_close`; libuv calls back on a later loop
//! turn, which frees the handle and the callback. So a callback may stop its
//! own poller: what it owns lives until it has returned.

use crate::error::{Result, VerbsError};
use std::ffi::c_void;

/// libuv's loop, opaque here.
#[repr(C)]
pub struct UvLoop {
    _private: [u8; 0],
}

type UvPollCallback = unsafe extern "C" fn(handle: *mut c_void, status: i32, events: i32);
type UvCloseCallback = unsafe extern "C" fn(handle: *mut c_void);

// libuv's functions, resolved from the `node` executable like Node-API (see build.rs).
extern "C" {
    fn uv_handle_size(kind: i32) -> usize;
    fn uv_poll_init(event_loop: *mut UvLoop, handle: *mut c_void, fd: i32) -> i32;
    fn uv_poll_start(handle: *mut c_void, events: i32, callback: UvPollCallback) -> i32;
    fn uv_poll_stop(handle: *mut c_void) -> i32;
    fn uv_close(handle: *mut c_void, callback: UvCloseCallback);
}

/// `UV_POLL` in uv.h's `uv_handle_type` (stable since libuv 1.0).
const UV_POLL: i32 = 8;
/// `UV_READABLE` in uv.h's `uv_poll_event`.
const UV_READABLE: i32 = 1;

/// What a readable wake runs.
pub type ReadableCallback = Box<dyn FnMut()>;

/// A live `uv_poll` watch on one descriptor, on its creator's loop.
pub struct EventLoopPoller {
    /// A `uv_poll_t` of `uv_handle_size(UV_POLL)` bytes; its first field
    /// (`data`, per uv.h's UV_HANDLE_FIELDS) holds the leaked callback box.
    handle: *mut c_void,
}

impl EventLoopPoller {
    /// Starts watching `fd` for readability on `event_loop`.
    ///
    /// # Safety
    /// `event_loop` is the live loop of the calling thread, and `fd` stays
    /// open until `stop` (or Drop) has run.
    pub unsafe fn start(event_loop: *mut UvLoop, fd: i32, on_readable: ReadableCallback) -> Result<EventLoopPoller> {
        // SAFETY: uv_handle_size only reads a table.
        let size = unsafe { uv_handle_size(UV_POLL) };
        // SAFETY: a zeroed allocation of the size libuv asks for; freed in on_closed.
        let handle = unsafe { libc::calloc(1, size) };
        if handle.is_null() {
            return Err(VerbsError::new("ERR_VERBS_NO_MEMORY", "uv_poll_t allocation failed"));
        }
        // SAFETY: handle is a fresh uv_poll_t; the loop is the caller's.
        let rc = unsafe { uv_poll_init(event_loop, handle, fd) };
        if rc != 0 {
            // SAFETY: libuv never registered the handle.
            unsafe { libc::free(handle) };
            return Err(VerbsError::new("ERR_VERBS_POLL", format!("uv_poll_init failed ({rc})")));
        }
        let data: *mut ReadableCallback = Box::into_raw(Box::new(on_readable));
        // SAFETY: `data` is uv_handle_t's first member; libuv leaves it to us.
        unsafe { *handle.cast::<*mut c_void>() = data.cast() };
        let poller = EventLoopPoller { handle };
        // SAFETY: the handle is initialised; on failure Drop closes it.
        let rc = unsafe { uv_poll_start(handle, UV_READABLE, on_poll) };
        if rc != 0 {
            return Err(VerbsError::new("ERR_VERBS_POLL", format!("uv_poll_start failed ({rc})")));
        }
        Ok(poller)
    }
}

impl Drop for EventLoopPoller {
    fn drop(&mut self) {
        // SAFETY: the handle is initialised and not yet closed (Drop runs once);
        // after uv_close libuv touches it only to call on_closed.
        unsafe {
            uv_poll_stop(self.handle);
            uv_close(self.handle, on_closed);
        }
    }
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: i32, _events: i32) {
    // An error status (EBADF after a close race) means there is nothing to read.
    if status < 0 {
        return;
    }
    // SAFETY: data holds the callback box until on_closed; libuv calls us on
    // the loop's thread only.
    let callback = unsafe { &mut **(*handle.cast::<*mut c_void>()).cast::<ReadableCallback>() };
    // A panic must not unwind into libuv.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; data is the box leaked by start.
    unsafe {
        let data = *handle.cast::<*mut c_void>();
        let callback = Box::from_raw(data.cast::<ReadableCallback>());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(callback)));
        libc::free(handle);
    }
}
