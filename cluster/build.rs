fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/hato.proto");
    // protox compiles the schema in pure Rust: no protoc binary needed.
    let fds = protox::compile(["proto/hato.proto"], ["proto"])?;
    // `bytes` fields as `Bytes`: a received payload is a slice of the receive buffer, not a copy.
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
