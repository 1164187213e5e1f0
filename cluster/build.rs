fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/hato.proto");
    // protox compiles the schema in pure Rust: no protoc binary needed.
    let fds = protox::compile(["proto/hato.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
