//! JavaScript handles for native objects.
//!
//! Life: a native function creates a `Handle<T>` around a native object and
//! wraps it into a fresh JavaScript object (`wrap`). The JavaScript object
//! owns the handle. `close()` takes the native object out deterministically;
//! if JavaScript drops the handle without closing it, the Node-API finalizer
//! drops the handle and with it the native object (the backstop). Handles are
//! touched only on the JavaScript thread of the environment that made them.

use super::instance::Instance;
use super::sys::*;
use super::value::Env;
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use std::any::Any;
use std::cell::{Ref, RefCell};
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

/// A native object owned by a JavaScript object, until closed.
pub struct Handle<T: 'static> {
    kind: &'static str,
    value: RefCell<Option<T>>,
    instance: Rc<Instance>,
}

impl<T: 'static> Handle<T> {
    /// Runs `action` on the object, or fails with `ERR_VERBS_CLOSED`.
    pub fn with<R>(&self, action: impl FnOnce(&T) -> Result<R>) -> Result<R> {
        match self.value.borrow().as_ref() {
            Some(value) => action(value),
            None => Err(VerbsError::closed(self.kind)),
        }
    }

    /// Borrows the object, or fails with `ERR_VERBS_CLOSED`.
    pub fn get(&self) -> Result<Ref<'_, T>> {
        Ref::filter_map(self.value.borrow(), Option::as_ref).map_err(|_| VerbsError::closed(self.kind))
    }

    /// Takes the object out (the caller releases it); `None` if already closed.
    pub fn take(&self) -> Option<T> {
        let taken = self.value.borrow_mut().take();
        if taken.is_some() {
            self.instance.forget(self.kind);
        }
        taken
    }

    /// Puts an object back after a `take` whose release was refused.
    pub fn restore(&self, value: T) {
        let mut slot = self.value.borrow_mut();
        assert!(slot.is_none(), "restore into an open {} handle", self.kind);
        *slot = Some(value);
        self.instance.remember(self.kind);
    }
}

impl<T: 'static> Drop for Handle<T> {
    fn drop(&mut self) {
        // The finalizer backstop: release what close() did not.
        if self.value.get_mut().take().is_some() {
            self.instance.forget(self.kind);
        }
    }
}

unsafe extern "C" fn finalize_handle(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: data is the Box<Box<dyn Any>> leaked by `wrap`; Node calls this once.
    let boxed = unsafe { Box::from_raw(data.cast::<Box<dyn Any>>()) };
    // A panic in a Drop must not unwind into Node.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(boxed)));
}

/// Wraps `value` into a new JavaScript object that owns it.
pub fn wrap<T: 'static>(env: Env, kind: &'static str, value: T) -> Result<napi_value> {
    let instance = Instance::get(env)?;
    instance.remember(kind);
    let handle: Box<dyn Any> = Box::new(Handle { kind, value: RefCell::new(Some(value)), instance });
    let object = env.object()?;
    env.set(object, "kind", env.string(kind)?)?;
    let data = Box::into_raw(Box::new(handle));
    // SAFETY: object is a fresh object of this env; Node owns `data` from now
    // on and hands it back to finalize_handle exactly once.
    let rc = unsafe { napi_wrap(env.0, object, data.cast(), Some(finalize_handle), ptr::null_mut(), ptr::null_mut()) };
    if rc != NAPI_OK {
        // SAFETY: Node did not take ownership, so we still own data.
        drop(unsafe { Box::from_raw(data) });
        return Err(VerbsError::new(ERR_INTERNAL, "napi_wrap failed"));
    }
    Ok(object)
}

/// The handle inside `value`, which must be a handle of type `T`.
/// The reference is valid while `value` is alive, i.e. during this call.
pub fn unwrap<'a, T: 'static>(env: Env, value: napi_value, name: &str, kind: &str) -> Result<&'a Handle<T>> {
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: value is a live handle of this call.
    if unsafe { napi_unwrap(env.0, value, &mut data) } != NAPI_OK || data.is_null() {
        return Err(VerbsError::arg_type(name, &format!("a {kind} handle")));
    }
    // SAFETY: every object we wrap holds a Box<Box<dyn Any>>, alive as long
    // as the object, which the caller keeps alive for this call.
    let any: &'a Box<dyn Any> = unsafe { &*data.cast::<Box<dyn Any>>() };
    any.downcast_ref::<Handle<T>>().ok_or_else(|| VerbsError::arg_type(name, &format!("a {kind} handle")))
}
