//! Compiles the C shim over rdma-core's static-inline verbs and links the
//! addon so that Node-API symbols resolve from the `node` executable at load.

fn main() {
    println!("cargo:rerun-if-changed=native/shim.c");
    println!("cargo:rerun-if-changed=native/shim.h");
    cc::Build::new()
        .file("native/shim.c")
        .include("native")
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wextra")
        .flag_if_supported("-Werror")
        .compile("roce_verbs_shim");
    println!("cargo:rustc-link-lib=dylib=ibverbs");
    println!("cargo:rustc-link-lib=dylib=rdmacm");
    // napi_* live in the node binary, not in a library we can link against.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--unresolved-symbols=ignore-all");
}
