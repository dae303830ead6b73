//! Reading and making JavaScript values. `Env` is only valid during the
//! Node-API call (or threadsafe-function callback) it was handed to, on that
//! environment's JavaScript thread.

use super::sys::*;
use crate::error::{Result, VerbsError};
use std::ffi::{c_void, CString};
use std::ptr;

/// The environment of the current Node-API call.
#[derive(Clone, Copy)]
pub struct Env(pub napi_env);

/// Turns a Node-API status into a `Result`, naming the operation.
fn status(rc: napi_status, what: &str) -> Result<()> {
    if rc == NAPI_OK {
        Ok(())
    } else {
        Err(VerbsError::new(crate::error::ERR_INTERNAL, format!("Node-API {what} failed with status {rc}")))
    }
}

impl Env {
    /// `undefined`.
    pub fn undefined(self) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: self.0 is the live env of this call; out is a valid slot.
        status(unsafe { napi_get_undefined(self.0, &mut out) }, "get_undefined")?;
        Ok(out)
    }

    /// A boolean.
    pub fn boolean(self, value: bool) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `undefined`.
        status(unsafe { napi_get_boolean(self.0, value, &mut out) }, "get_boolean")?;
        Ok(out)
    }

    /// A number.
    pub fn number(self, value: f64) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `undefined`.
        status(unsafe { napi_create_double(self.0, value, &mut out) }, "create_double")?;
        Ok(out)
    }

    /// A string (copied).
    pub fn string(self, value: &str) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: the pointer and length describe `value`, which outlives the call.
        status(
            unsafe { napi_create_string_utf8(self.0, value.as_ptr().cast(), value.len(), &mut out) },
            "create_string",
        )?;
        Ok(out)
    }

    /// A new plain object.
    pub fn object(self) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `undefined`.
        status(unsafe { napi_create_object(self.0, &mut out) }, "create_object")?;
        Ok(out)
    }

    /// A new array of the given length.
    pub fn array(self, length: usize) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: as in `undefined`.
        status(unsafe { napi_create_array_with_length(self.0, length, &mut out) }, "create_array")?;
        Ok(out)
    }

    /// A Node `Buffer` holding a copy of `bytes`.
    pub fn buffer_copy(self, bytes: &[u8]) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: the pointer and length describe `bytes`; Node copies them.
        status(
            unsafe { napi_create_buffer_copy(self.0, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut out) },
            "create_buffer_copy",
        )?;
        Ok(out)
    }

    /// A new `ArrayBuffer` holding a copy of `bytes`.
    pub fn array_buffer_copy(self, bytes: &[u8]) -> Result<napi_value> {
        let mut out = ptr::null_mut();
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: Node allocates `bytes.len()` bytes at `data`, which we fill
        // completely before anyone else can see the buffer.
        unsafe {
            status(napi_create_arraybuffer(self.0, bytes.len(), &mut data, &mut out), "create_arraybuffer")?;
            if !bytes.is_empty() {
                ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len());
            }
        }
        Ok(out)
    }

    /// `object[name] = value`.
    pub fn set(self, object: napi_value, name: &str, value: napi_value) -> Result<()> {
        let name = CString::new(name).expect("property names are literals without NUL");
        // SAFETY: object and value are live handles of this call; name is NUL-terminated.
        status(unsafe { napi_set_named_property(self.0, object, name.as_ptr(), value) }, "set_named_property")
    }

    /// `array[index] = value`.
    pub fn set_element(self, array: napi_value, index: u32, value: napi_value) -> Result<()> {
        // SAFETY: array and value are live handles of this call.
        status(unsafe { napi_set_element(self.0, array, index, value) }, "set_element")
    }

    /// The `typeof` of a value, as a Node-API value type.
    pub fn type_of(self, value: napi_value) -> Result<i32> {
        let mut out = 0;
        // SAFETY: value is a live handle of this call.
        status(unsafe { napi_typeof(self.0, value, &mut out) }, "typeof")?;
        Ok(out)
    }

    /// True for `undefined` and `null` (an omitted optional argument).
    pub fn is_nullish(self, value: napi_value) -> Result<bool> {
        let kind = self.type_of(value)?;
        Ok(kind == NAPI_UNDEFINED || kind == NAPI_NULL)
    }

    /// An integer in `[0, max]` given as a number (or a bigint when
    /// `allow_bigint`), for lengths, offsets, keys and work request ids.
    pub fn to_integer(self, value: napi_value, name: &str, max: u64) -> Result<u64> {
        let mut number = 0.0;
        // SAFETY: value is a live handle of this call. Trying the number
        // first saves a typeof on the hot path.
        if unsafe { napi_get_value_double(self.0, value, &mut number) } == NAPI_OK {
            if !(number >= 0.0 && number.fract() == 0.0 && number <= max as f64 && number <= MAX_SAFE_INTEGER) {
                return Err(VerbsError::invalid(format!("{name} must be an integer in [0, {max}], got {number}")));
            }
            return Ok(number as u64);
        }
        if self.type_of(value)? == NAPI_BIGINT {
            let mut out = 0u64;
            let mut lossless = false;
            // SAFETY: value is a live bigint handle of this call.
            unsafe { napi_get_value_bigint_uint64(self.0, value, &mut out, &mut lossless) };
            if !lossless || out > max {
                return Err(VerbsError::invalid(format!("{name} must be an integer in [0, {max}]")));
            }
            return Ok(out);
        }
        Err(VerbsError::arg_type(name, "an integer number or bigint"))
    }

    /// A u32 given as a number.
    pub fn to_u32(self, value: napi_value, name: &str) -> Result<u32> {
        Ok(self.to_integer(value, name, u32::MAX as u64)? as u32)
    }

    /// A boolean.
    pub fn to_bool(self, value: napi_value, name: &str) -> Result<bool> {
        let mut out = false;
        // SAFETY: value is a live handle of this call.
        match unsafe { napi_get_value_bool(self.0, value, &mut out) } {
            NAPI_OK => Ok(out),
            _ => Err(VerbsError::arg_type(name, "a boolean")),
        }
    }

    /// A string (at most `max_bytes` of UTF-8).
    pub fn to_string(self, value: napi_value, name: &str, max_bytes: usize) -> Result<String> {
        let mut length = 0usize;
        // SAFETY: a null buffer asks Node for the length only.
        if unsafe { napi_get_value_string_utf8(self.0, value, ptr::null_mut(), 0, &mut length) } != NAPI_OK {
            return Err(VerbsError::arg_type(name, "a string"));
        }
        if length > max_bytes {
            return Err(VerbsError::invalid(format!("{name} is longer than {max_bytes} bytes")));
        }
        let mut bytes = vec![0u8; length + 1];
        // SAFETY: bytes has room for length bytes plus the NUL Node writes.
        status(
            unsafe { napi_get_value_string_utf8(self.0, value, bytes.as_mut_ptr().cast(), bytes.len(), &mut length) },
            "get_value_string",
        )?;
        bytes.truncate(length);
        String::from_utf8(bytes).map_err(|_| VerbsError::arg_type(name, "valid UTF-8"))
    }

    /// The bytes of a `Buffer` or any `TypedArray` (or `DataView`), in place.
    /// The slice is valid while the JavaScript value is alive and not detached.
    pub fn to_bytes(self, value: napi_value, name: &str) -> Result<(*mut u8, usize)> {
        let mut is_typed = false;
        // SAFETY: value is a live handle of this call.
        unsafe { napi_is_typedarray(self.0, value, &mut is_typed) };
        let mut data: *mut c_void = ptr::null_mut();
        let mut length = 0usize;
        if is_typed {
            let mut kind = 0;
            let mut count = 0usize;
            let mut offset = 0usize;
            let mut array_buffer = ptr::null_mut();
            // SAFETY: value is a typed array; every out pointer is a valid slot.
            status(
                unsafe { napi_get_typedarray_info(self.0, value, &mut kind, &mut count, &mut data, &mut array_buffer, &mut offset) },
                "get_typedarray_info",
            )?;
            length = count * typed_array_element_size(kind);
        } else {
            let mut is_buffer = false;
            // SAFETY: value is a live handle of this call.
            unsafe { napi_is_buffer(self.0, value, &mut is_buffer) };
            if !is_buffer {
                return Err(VerbsError::arg_type(name, "a Buffer or TypedArray"));
            }
            // SAFETY: value is a Buffer; every out pointer is a valid slot.
            status(unsafe { napi_get_buffer_info(self.0, value, &mut data, &mut length) }, "get_buffer_info")?;
        }
        Ok((data.cast(), length))
    }

    /// Calls `function` with `args` and `undefined` as `this`.
    pub fn call(self, function: napi_value, args: &[napi_value]) -> Result<napi_value> {
        let this = self.undefined()?;
        let mut out = ptr::null_mut();
        // SAFETY: function and args are live handles of this call.
        let rc = unsafe { napi_call_function(self.0, this, function, args.len(), args.as_ptr(), &mut out) };
        if rc == NAPI_PENDING_EXCEPTION {
            return Err(VerbsError::new("ERR_VERBS_CALLBACK_THREW", "a JavaScript callback threw"));
        }
        status(rc, "call_function")?;
        Ok(out)
    }
}

/// `Number.MAX_SAFE_INTEGER`: work request ids and addresses above it would
/// not survive the trip through a JavaScript number.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn typed_array_element_size(kind: i32) -> usize {
    match kind {
        0..=2 => 1,  // int8, uint8, uint8_clamped
        3 | 4 => 2,  // int16, uint16
        5..=7 => 4,  // int32, uint32, float32
        8..=10 => 8, // float64, bigint64, biguint64
        _ => 1,
    }
}
