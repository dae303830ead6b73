//! Calls from a native thread into JavaScript.
//!
//! Life: created on the JavaScript thread around a JavaScript callback; the
//! native thread that owns it calls `call` (never blocking: a full queue
//! hands the item back so the thread can retry or stop); dropping it
//! releases Node's threadsafe function, after which Node still delivers what
//! was queued and then frees it. Items still queued when the environment is
//! torn down are dropped without calling JavaScript.

use super::function::throw;
use super::sys::*;
use super::value::Env;
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use std::ffi::c_void;
use crate::bounded_queue::Waker;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

/// Turns one queued item into a JavaScript call, on the JavaScript thread.
pub type Deliver<T> = fn(Env, napi_value, T) -> Result<()>;

/// Why an item could not be queued; the item comes back.
pub enum CallError<T> {
    /// The bounded queue is full: JavaScript is behind, try again later.
    Full(T),
    /// The environment is going away: stop calling.
    Closing(T),
}

/// A JavaScript callback that native threads may queue calls to.
pub struct ThreadsafeCallback<T: Send + 'static> {
    raw: napi_threadsafe_function,
    _items: PhantomData<fn(T)>,
}

// SAFETY: Node-API threadsafe functions are made to be called from any thread.
unsafe impl<T: Send + 'static> Send for ThreadsafeCallback<T> {}
// SAFETY: as above; `call` takes &self and Node serialises the queue.
unsafe impl<T: Send + 'static> Sync for ThreadsafeCallback<T> {}

unsafe extern "C" fn call_js<T: Send + 'static>(env: napi_env, callback: napi_value, context: *mut c_void, data: *mut c_void) {
    // SAFETY: data is the Box<T> leaked by `call`, delivered exactly once.
    let item = unsafe { Box::from_raw(data.cast::<T>()) };
    if env.is_null() || callback.is_null() {
        return; // the environment is being torn down: drop the item
    }
    // SAFETY: context is the Deliver<T> fn pointer stored by `new`.
    let deliver: Deliver<T> = unsafe { std::mem::transmute::<*mut c_void, Deliver<T>>(context) };
    let env = Env(env);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| deliver(env, callback, *item)));
    match outcome {
        Ok(Ok(())) => {}
        // The callback threw: leave its exception pending, Node reports it.
        Ok(Err(error)) if error.code == "ERR_VERBS_CALLBACK_THREW" => {}
        Ok(Err(error)) => throw(env, &error),
        Err(_) => throw(env, &VerbsError::new(ERR_INTERNAL, "native panic while delivering to JavaScript")),
    }
}

impl<T: Send + 'static> ThreadsafeCallback<T> {
    /// Wraps `callback`; at most `queue_max` items wait for JavaScript.
    pub fn new(env: Env, callback: napi_value, name: &str, queue_max: usize, deliver: Deliver<T>) -> Result<Self> {
        assert!(queue_max > 0, "a threadsafe callback needs a bounded, non-zero queue");
        let resource_name = env.string(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: callback is a live function of this env; the context is a
        // plain fn pointer valid for the program's life.
        let rc = unsafe {
            napi_create_threadsafe_function(
                env.0,
                callback,
                ptr::null_mut(),
                resource_name,
                queue_max,
                1,
                ptr::null_mut(),
                None,
                deliver as *mut c_void,
                Some(call_js::<T>),
                &mut raw,
            )
        };
        if rc != NAPI_OK {
            return Err(VerbsError::new(ERR_INTERNAL, format!("napi_create_threadsafe_function failed ({rc})")));
        }
        Ok(ThreadsafeCallback { raw, _items: PhantomData })
    }

    /// Queues `item` for JavaScript without blocking.
    pub fn call(&self, item: T) -> std::result::Result<(), CallError<T>> {
        let data = Box::into_raw(Box::new(item));
        // SAFETY: raw is alive until Drop; on success Node owns data.
        let rc = unsafe { napi_call_threadsafe_function(self.raw, data.cast(), NAPI_TSFN_NONBLOCKING) };
        if rc == NAPI_OK {
            return Ok(());
        }
        // SAFETY: Node refused the item, so it is still ours.
        let item = *unsafe { Box::from_raw(data) };
        if rc == NAPI_QUEUE_FULL {
            Err(CallError::Full(item))
        } else {
            Err(CallError::Closing(item))
        }
    }

    /// Lets the process exit even while this callback is alive.
    pub fn unref(&self, env: Env) {
        // SAFETY: called on the JavaScript thread of the env that made raw.
        unsafe { napi_unref_threadsafe_function(env.0, self.raw) };
    }

    /// Keeps the process alive while this callback is alive (the default).
    pub fn reference(&self, env: Env) {
        // SAFETY: as in `unref`.
        unsafe { napi_ref_threadsafe_function(env.0, self.raw) };
    }
}

/// Something whose threadsafe callback can keep the process alive or not.
pub trait KeepAlive {
    /// Lets the process exit even while the callback is alive.
    fn unref(&self, env: Env);
    /// Keeps the process alive while the callback is alive.
    fn reference(&self, env: Env);
}

impl<T: Send + 'static> KeepAlive for ThreadsafeCallback<T> {
    fn unref(&self, env: Env) {
        ThreadsafeCallback::unref(self, env);
    }
    fn reference(&self, env: Env) {
        ThreadsafeCallback::reference(self, env);
    }
}

fn call_without_arguments(env: Env, callback: napi_value, _: ()) -> Result<()> {
    env.call(callback, &[])?;
    Ok(())
}

/// A `Waker` that calls the JavaScript function `callback` (no arguments)
/// on its thread. At most one call is queued: a wake that finds one queued
/// is dropped, since the queued call runs after it and the owner drains
/// everything there is at that time. Returns the callback too (for unref).
pub fn javascript_waker(env: Env, callback: napi_value, name: &str) -> Result<(Waker, Arc<ThreadsafeCallback<()>>)> {
    let tsfn = Arc::new(ThreadsafeCallback::new(env, callback, name, WAKES_QUEUED_MAX, call_without_arguments)?);
    let caller = tsfn.clone();
    let waker: Waker = Box::new(move || {
        // Full: a queued wake covers this one. Closing: nobody to wake.
        let _ = caller.call(());
    });
    Ok((waker, tsfn))
}

/// One queued wake is enough (see `javascript_waker`).
const WAKES_QUEUED_MAX: usize = 1;

impl<T: Send + 'static> Drop for ThreadsafeCallback<T> {
    fn drop(&mut self) {
        // SAFETY: we acquired one thread count at creation and release it once.
        unsafe { napi_release_threadsafe_function(self.raw, NAPI_TSFN_RELEASE) };
    }
}
