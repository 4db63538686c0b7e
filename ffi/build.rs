//! Gives the Linux shared library the SONAME `libnpmk.so`, so that programs record that name
//! (not a build path) whether they link it by `-lnpmk` or by its full path.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnpmk.so");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
