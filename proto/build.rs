//! Compiles `assay.proto` with protox (a Rust protobuf compiler: no `protoc`
//! binary needed) and generates prost messages and tonic clients/servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=assay.proto");
    let fds = protox::compile(["assay.proto"], ["."])?;
    tonic_prost_build::configure()
        // Maps become BTreeMaps, so encodings and iteration are deterministic.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
