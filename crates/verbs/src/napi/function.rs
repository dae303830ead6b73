//! Exported functions. Each native function is a plain Rust `fn` that gets the
//! environment and its arguments and returns a `Result`; one trampoline turns
//! an `Err` into a thrown JavaScript error with its `code`, and a panic into
//! an `ERR_VERBS_INTERNAL` error, so neither unwinds into Node.

use super::sys::*;
use super::value::Env;
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// Most arguments any exported function takes: a post with the largest
/// scatter/gather list (7 fixed + 3 per SGE, see queue_pair.rs).
pub const ARGUMENTS_MAX: usize = 7 + 3 * crate::cm_id::SGE_PER_WORK_REQUEST_MAX;

/// The arguments of one call; missing ones read as `undefined`.
pub struct Arguments {
    values: [napi_value; ARGUMENTS_MAX],
    count: usize,
    env: Env,
}

impl Arguments {
    /// Argument `index`, or `undefined` when the caller passed fewer (looked
    /// up only then: every Node-API call counts on the hot path).
    pub fn get(&self, index: usize) -> napi_value {
        assert!(index < ARGUMENTS_MAX, "argument index {index} beyond ARGUMENTS_MAX");
        if index < self.count {
            self.values[index]
        } else {
            self.env.undefined().unwrap_or(ptr::null_mut())
        }
    }

    /// How many arguments the caller passed (capped at `ARGUMENTS_MAX`).
    pub fn count(&self) -> usize {
        self.count.min(ARGUMENTS_MAX)
    }
}

/// The shape of every native function.
pub type NativeFunction = fn(Env, &Arguments) -> Result<napi_value>;

unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let env = Env(env);
    let mut data: *mut c_void = ptr::null_mut();
    let mut arguments = Arguments { values: [ptr::null_mut(); ARGUMENTS_MAX], count: ARGUMENTS_MAX, env };
    // SAFETY: env and info come from Node for this call; the argv array has
    // room for `count` values as we promise Node.
    let rc = unsafe {
        napi_get_cb_info(env.0, info, &mut arguments.count, arguments.values.as_mut_ptr(), ptr::null_mut(), &mut data)
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<napi_value> {
        if rc != NAPI_OK {
            return Err(VerbsError::new(ERR_INTERNAL, "napi_get_cb_info failed"));
        }
        // SAFETY: `data` is the NativeFunction pointer stored by `export`.
        let function: NativeFunction = unsafe { std::mem::transmute::<*mut c_void, NativeFunction>(data) };
        function(env, &arguments)
    }));
    let error = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(error)) => error,
        Err(panic) => VerbsError::new(ERR_INTERNAL, format!("native panic: {}", panic_message(&panic))),
    };
    throw(env, &error);
    ptr::null_mut()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Makes the JavaScript `Error` for `error`, with `code` (and `errno`) set.
pub fn error_value(env: Env, error: &VerbsError) -> Result<napi_value> {
    let code = env.string(&error.code)?;
    let message = env.string(&error.message)?;
    let mut out = ptr::null_mut();
    // SAFETY: code and message are live string handles of this call.
    if unsafe { napi_create_error(env.0, code, message, &mut out) } != NAPI_OK {
        return Err(VerbsError::new(ERR_INTERNAL, "napi_create_error failed"));
    }
    if let Some(errno) = error.errno {
        env.set(out, "errno", env.number(errno as f64)?)?;
    }
    Ok(out)
}

/// Throws `error` in `env` unless an exception is already pending.
pub fn throw(env: Env, error: &VerbsError) {
    let mut pending = false;
    // SAFETY: env is live for this call.
    unsafe { napi_is_exception_pending(env.0, &mut pending) };
    if pending {
        return;
    }
    if let Ok(value) = error_value(env, error) {
        // SAFETY: value is an Error created in this env.
        unsafe { napi_throw(env.0, value) };
    }
}

/// Adds `exports[name] = function`.
pub fn export(env: Env, exports: napi_value, name: &str, function: NativeFunction) -> Result<()> {
    let c_name = CString::new(name).expect("export names are literals without NUL");
    let mut value = ptr::null_mut();
    // SAFETY: the data pointer is a plain fn pointer, valid for the program's life.
    let rc = unsafe {
        napi_create_function(env.0, c_name.as_ptr(), name.len(), Some(trampoline), function as *mut c_void, &mut value)
    };
    if rc != NAPI_OK {
        return Err(VerbsError::new(ERR_INTERNAL, format!("napi_create_function({name}) failed")));
    }
    env.set(exports, name, value)
}
