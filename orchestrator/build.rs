//! Generates the gRPC code for the orchestrator's API from proto/ (tonic + prost), and the file
//! descriptor set the reflection service serves (so grpcurl works without the .proto file).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("ringwise_descriptor.bin"))
        .compile_protos(&["proto/ringwise/v1/orchestrator.proto"], &["proto"])?;
    Ok(())
}
