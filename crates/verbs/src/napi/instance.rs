//! Per-environment state. The addon is context-aware: the main thread and
//! every worker thread get their own `Instance` (set as Node-API instance
//! data when the module registers in that environment), so nothing native is
//! shared between environments by accident.
//!
//! It counts the open handles of each kind, so tests can assert at teardown
//! that nothing leaked (`liveObjects()`).

use super::sys::*;
use super::value::Env;
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

/// State of one Node environment (main thread or one worker).
#[derive(Default)]
pub struct Instance {
    open_handles: RefCell<BTreeMap<&'static str, u32>>,
}

unsafe extern "C" fn finalize_instance(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: data is the Rc leaked by `install`, released once by Node.
    drop(unsafe { Rc::from_raw(data.cast::<Instance>()) });
}

impl Instance {
    /// Creates this environment's instance; called once per registration.
    pub fn install(env: Env) -> Result<()> {
        let data = Rc::into_raw(Rc::new(Instance::default()));
        // SAFETY: Node keeps data until the env is torn down, then finalizes it.
        if unsafe { napi_set_instance_data(env.0, data as *mut c_void, Some(finalize_instance), ptr::null_mut()) } != NAPI_OK {
            // SAFETY: Node did not take it.
            drop(unsafe { Rc::from_raw(data) });
            return Err(VerbsError::new(ERR_INTERNAL, "napi_set_instance_data failed"));
        }
        Ok(())
    }

    /// This environment's instance.
    pub fn get(env: Env) -> Result<Rc<Instance>> {
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: env is live for this call.
        if unsafe { napi_get_instance_data(env.0, &mut data) } != NAPI_OK || data.is_null() {
            return Err(VerbsError::new(ERR_INTERNAL, "addon instance data missing"));
        }
        let data = data as *const Instance;
        // SAFETY: data is the Rc installed by `install`; we add a count for our clone.
        unsafe {
            Rc::increment_strong_count(data);
            Ok(Rc::from_raw(data))
        }
    }

    /// Counts one more open handle of `kind`.
    pub fn remember(&self, kind: &'static str) {
        *self.open_handles.borrow_mut().entry(kind).or_insert(0) += 1;
    }

    /// Counts one handle of `kind` closed.
    pub fn forget(&self, kind: &'static str) {
        let mut open = self.open_handles.borrow_mut();
        let count = open.get_mut(kind).expect("forget of a kind never remembered");
        assert!(*count > 0, "more {kind} handles closed than opened");
        *count -= 1;
    }

    /// Open handles per kind (kinds with none open are left out).
    pub fn open_handles(&self) -> Vec<(&'static str, u32)> {
        self.open_handles.borrow().iter().filter(|(_, count)| **count > 0).map(|(kind, count)| (*kind, *count)).collect()
    }
}
