//! Compiles every file under `proto/` into Rust (prost messages, tonic clients and servers) and
//! writes the file descriptor set that the server serves through gRPC reflection.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so a fresh machine needs no system
//! protobuf install.

use std::path::{Path, PathBuf};

/// Messages with a `session_token` field: their derived `Debug` would print the secret.
const TOKEN_BEARING_MESSAGES: [&str; 5] = [
    ".activesessions.v1.Subject",
    ".activesessions.v1.Subject.subject",
    ".activesessions.v1.RegisterSessionResponse",
    ".activesessions.v1.ValidateSessionRequest",
    ".activesessions.v1.TouchSessionRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = protoc_bin_vendored::include_path()?;
    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let proto_root = PathBuf::from("proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("activesessions_descriptor.bin"))
        .build_client(true)
        .build_server(true)
        // Messages that carry a session token get a hand-written `Debug` (in `src/redact.rs`)
        // that never prints it.
        .skip_debug(TOKEN_BEARING_MESSAGES)
        // Undecodable requests are INVALID_ARGUMENT, not tonic's default INTERNAL.
        .codec_path("crate::codec::ActiveSessionsCodec")
        .compile_with_config(prost_config, &files, &[proto_root.clone(), include])?;

    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}

/// Every `.proto` file below `dir`, so that adding a file needs no change here.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
