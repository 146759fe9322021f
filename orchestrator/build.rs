//! Generates the gRPC code for the orchestrator's API from proto/ (tonic + prost).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/ringwise/v1/orchestrator.proto"], &["proto"])?;
    Ok(())
}
