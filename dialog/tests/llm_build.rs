//! Guards the llama.cpp build against ggml's AMX backend (llama.cpp issue 20824: SIGSEGV in
//! `ggml_backend_amx_mul_mat` at the first decode on Sapphire Rapids class CPUs; the `-U__AMX_*`
//! flags in `.cargo/config.toml` keep it out). On an AMX host the running library is checked and
//! the real model decodes; on any other host the CMake cache of the llama.cpp build is checked, so
//! the guard never passes for want of an AMX CPU. The fast kernels must stay: AVX2, AVX-512 where
//! the CPU has it, and the Q4_0 repack.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::llm::llama::{system_info, LlamaCppModel};
use dialog::{ChatMessage, GenerationRequest, LanguageModel, LlmConfig, Role};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// The flags `.cargo/config.toml` passes to every C and C++ compile of llama.cpp.
const UNDEFINES: [&str; 3] = ["-U__AMX_INT8__", "-U__AMX_TILE__", "-U__AMX_BF16__"];

/// The CPU flags of /proc/cpuinfo (empty where there is none).
fn cpu_flags() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn has_flag(flag: &str) -> bool {
    cpu_flags().iter().any(|f| f == flag)
}

fn amx_host() -> bool {
    has_flag("amx_int8") || has_flag("amx_tile")
}

/// The features of llama.cpp's system-info line (`AVX2 = 1 | …`) with value 1.
fn features_on(info: &str) -> Vec<&str> {
    info.split('|')
        .filter_map(|f| f.split_once('='))
        .filter(|(_, v)| v.trim() == "1")
        .map(|(k, _)| k.rsplit(':').next().unwrap_or(k).trim())
        .collect()
}

fn extra_buffer_types(info: &str) -> Vec<&str> {
    info.split_once("extra buffer types:")
        .map(|(_, b)| b.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

#[test]
fn system_info_shows_the_fast_kernels_and_no_amx() {
    let info = system_info();
    println!("llama.cpp system info: {info}");
    let features = features_on(info);
    let buffers = extra_buffer_types(info);
    assert!(
        !features.contains(&"AMX_INT8") && !buffers.contains(&"AMX"),
        "llama.cpp was built with ggml's AMX backend (crashes on AMX CPUs, llama.cpp issue 20824): \
         {info}\nCheck the -U__AMX_* flags in .cargo/config.toml, then `cargo clean -p llama-cpp-sys-2`"
    );
    if has_flag("avx2") {
        assert!(features.contains(&"AVX2"), "AVX2 kernels missing: {info}");
    }
    if has_flag("avx512f") {
        assert!(
            features.contains(&"AVX512"),
            "AVX-512 kernels missing: {info}"
        );
    }
    assert!(
        features.contains(&"REPACK") && buffers.contains(&"CPU_REPACK"),
        "the Q4_0 repack (GGML_CPU_REPACK) is off: {info}"
    );
}

#[test]
fn on_an_amx_host_the_real_model_decodes() {
    if !amx_host() {
        println!(
            "no AMX on this host (/proc/cpuinfo lists neither amx_int8 nor amx_tile): the decode \
             check is for AMX hosts; llama_cpp_build_undefines_the_amx_macros guards the build"
        );
        return;
    }
    println!("AMX host: decoding with the real model");
    let config = LlmConfig {
        model_path: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        threads: 1,
        ..LlmConfig::default()
    };
    let model =
        LlamaCppModel::load(&config).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"));
    let mut request = GenerationRequest::new(vec![
        ChatMessage::new(Role::System, "You are a helpful phone agent."),
        ChatMessage::new(Role::User, "What is car insurance?"),
    ]);
    request.max_tokens = 8;
    let out = model
        .generate(&request, &CancellationToken::new(), &mut |_| {
            ControlFlow::Continue(())
        })
        .expect("generation");
    assert!(out.generated_tokens > 0, "nothing decoded: {out:?}");
}

/// Profile folders (`target/debug`) that may hold this test's llama.cpp build, most likely first.
fn profile_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // target/<profile>/deps/llm_build-<hash>, also under target/<triple>/<profile>/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile) = exe.parent().and_then(Path::parent) {
            dirs.push(profile.to_path_buf());
        }
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join(profile));
    }
    dirs.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target")
            .join(profile),
    );
    dirs
}

/// `<profile>/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt` of the first folder that has any.
fn cmake_caches() -> Result<Vec<PathBuf>, String> {
    let mut looked = Vec::new();
    for dir in profile_dirs() {
        let build = dir.join("build");
        looked.push(format!(
            "{}/llama-cpp-sys-2-*/out/build/CMakeCache.txt",
            build.display()
        ));
        let Ok(entries) = std::fs::read_dir(&build) else {
            continue;
        };
        let caches: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("llama-cpp-sys-2-")
            })
            .map(|e| e.path().join("out/build/CMakeCache.txt"))
            .filter(|p| p.is_file())
            .collect();
        if !caches.is_empty() {
            return Ok(caches);
        }
    }
    Err(looked.join("\n  "))
}

/// The value of `NAME:TYPE=value` in a CMake cache.
fn cache_value<'a>(cache: &'a str, name: &str) -> Option<&'a str> {
    cache.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.split(':').next() == Some(name)).then_some(value)
    })
}

#[test]
fn llama_cpp_build_undefines_the_amx_macros() {
    if amx_host() {
        println!("AMX host: the running library is checked too (see the other tests)");
    } else {
        println!(
            "no AMX on this host (/proc/cpuinfo lists neither amx_int8 nor amx_tile): checking \
             the llama.cpp build configuration (CMake cache) instead"
        );
    }
    let caches = match cmake_caches() {
        Ok(caches) => caches,
        Err(looked) if amx_host() => {
            println!("no llama.cpp CMake cache found; looked for\n  {looked}");
            return;
        }
        Err(looked) => panic!(
            "cannot check the llama.cpp build: no CMake cache of llama-cpp-sys-2 found; looked \
             for\n  {looked}"
        ),
    };
    for path in caches {
        let cache = std::fs::read_to_string(&path).unwrap();
        let stale = "a llama.cpp build from before the -U__AMX_* flags of .cargo/config.toml: \
                     run `cargo clean -p llama-cpp-sys-2`";
        for var in ["CMAKE_C_FLAGS", "CMAKE_CXX_FLAGS"] {
            let flags = cache_value(&cache, var).unwrap_or_default();
            println!("{}: {var}={flags}", path.display());
            for undefine in UNDEFINES {
                assert!(
                    flags.split_whitespace().any(|f| f == undefine),
                    "{}: {var} lacks {undefine} ({stale})",
                    path.display()
                );
            }
        }
        for option in ["GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"] {
            assert_ne!(
                cache_value(&cache, option),
                Some("ON"),
                "{}: {option} is on",
                path.display()
            );
        }
        // The fast kernels stay: native (AVX2/AVX-512 as the CPU has them) and the Q4_0 repack.
        for option in ["GGML_NATIVE", "GGML_CPU_REPACK"] {
            assert_eq!(
                cache_value(&cache, option),
                Some("ON"),
                "{}: {option} is not on",
                path.display()
            );
        }
    }
}
