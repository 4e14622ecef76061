//! Neal's funnel as a sampo plugin in Rust (a `cdylib`), the same arithmetic
//! as sampo's built-in `funnel` model, so that both give bit-identical
//! samples for the same seed:
//!
//!   v ~ N(0, sigma²),  x_i | v ~ N(0, e^v)
//!
//! `config = { sigma = 3.0 }`. It declares `SAMPO_PER_THREAD`: sampo makes
//! one context per pool thread (each counts its own evaluations, which is
//! what the context is for here).

use std::ffi::{c_char, c_int, c_void, CStr};

const SAMPO_ABI_VERSION: c_int = 1;
const SAMPO_PER_THREAD: c_int = 2;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

struct Funnel {
    sigma: f64,
    evaluations: u64,
}

#[no_mangle]
pub extern "C" fn sampo_abi_version() -> c_int {
    SAMPO_ABI_VERSION
}

#[no_mangle]
pub extern "C" fn sampo_thread_safety() -> c_int {
    SAMPO_PER_THREAD
}

/// The number after `"key":` in a flat JSON object.
fn number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Writes a NUL-terminated message into sampo's buffer.
unsafe fn set_error(err: *mut c_char, err_len: usize, message: &str) {
    let n = message.len().min(err_len.saturating_sub(1));
    std::ptr::copy_nonoverlapping(message.as_ptr().cast(), err, n);
    *err.add(n) = 0;
}

/// # Safety
/// Called by sampo as `include/sampo.h` describes.
#[no_mangle]
pub unsafe extern "C" fn sampo_init(
    _state: *const c_char,
    dim: usize,
    config_json: *const c_char,
    ctx: *mut *mut c_void,
    n_outputs: *mut usize,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    if dim < 2 {
        set_error(err, err_len, "the funnel needs at least 2 parameters (v, x…)");
        return 1;
    }
    let config = CStr::from_ptr(config_json).to_string_lossy();
    let sigma = number(&config, "sigma").unwrap_or(3.0);
    if !(sigma.is_finite() && sigma > 0.0) {
        set_error(err, err_len, "config.sigma must be a positive number");
        return 1;
    }
    *ctx = Box::into_raw(Box::new(Funnel { sigma, evaluations: 0 })).cast();
    *n_outputs = 0;
    0
}

/// # Safety
/// `ctx` from `sampo_init`, `x` of `dim` values, one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn sampo_log_density(
    ctx: *mut c_void,
    x: *const f64,
    dim: usize,
    out: *mut f64,
) -> c_int {
    let f = &mut *ctx.cast::<Funnel>();
    f.evaluations += 1;
    let x = std::slice::from_raw_parts(x, dim);
    let v = x[0];
    let n = (dim - 1) as f64;
    let lv = -0.5 * (v / f.sigma).powi(2) - f.sigma.ln() - 0.5 * LN_2PI;
    let sum_sq: f64 = x[1..].iter().map(|xi| xi * xi).sum();
    *out = lv - 0.5 * n * (LN_2PI + v) - 0.5 * sum_sq * (-v).exp();
    0
}

/// # Safety
/// `ctx` from `sampo_init`, freed once.
#[no_mangle]
pub unsafe extern "C" fn sampo_free(ctx: *mut c_void) {
    drop(Box::from_raw(ctx.cast::<Funnel>()));
}
