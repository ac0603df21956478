//! onnxruntime through the `ort` crate, with the shared library loaded at run time
//! (`load-dynamic`): nothing is downloaded at build time, and a board without the library still
//! runs its tract builds.

use std::ffi::{CStr, c_char, c_int};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProviderDispatch};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};
use sha2::{Digest, Sha256};

use crate::model::{
    Dim, GraphOptimization, LoadOptions, LoadedModel, ModelInfo, RuntimeError, TensorInfo,
    check_declared_fits, check_window, graph_ops, load_err, select_input, select_output,
};
use crate::{ONNXRUNTIME, Runtime, RuntimeInfo};

/// How to get the library onto a board, for every "not available" message.
pub const INSTALL_HINT: &str = "install it on the board with `pip install onnxruntime`, or point the rig's `onnxruntime` key at a libonnxruntime.so";

/// The library file name prefix on Linux (`libonnxruntime.so.1.32.0`).
const LIB_PREFIX: &str = "libonnxruntime.so";

/// Where the library is looked for, in order: the rig's path, `ORT_DYLIB_PATH`, the installed
/// `onnxruntime` Python wheel (`onnxruntime/capi/libonnxruntime.so.*`), the system library path.
/// A path the rig or the environment names must exist: it is never silently replaced by another
/// library. `Err` lists what was tried.
pub fn discover(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return existing(path, "the rig's `onnxruntime` path");
    }
    if let Some(path) = ort_dylib_path() {
        return existing(Path::new(&path), "ORT_DYLIB_PATH");
    }
    let wheel = python_wheel_dir();
    if let Some(found) = wheel
        .as_deref()
        .and_then(|dir| newest_library(&dir.join("capi")))
    {
        return Ok(found);
    }
    let dirs = system_library_dirs();
    if let Some(found) = dirs.iter().find_map(|d| newest_library(d)) {
        return Ok(found);
    }
    Err(format!(
        "no libonnxruntime.so: ORT_DYLIB_PATH is unset, {}, and none in {}",
        match wheel {
            Some(dir) => format!("the Python wheel at {} has none", dir.display()),
            None => "python3 has no `onnxruntime` package".into(),
        },
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn existing(path: &Path, what: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(format!("{what} `{}` is not a file", path.display()))
    }
}

/// The wheel's package folder as a host found it, handed to the agents it starts on the same
/// machine (empty: python3 has no `onnxruntime` package). Asking Python costs a Python start,
/// 0.2 s behind a pyenv shim, and an agent starts for every repeat of every run.
pub const WHEEL_HINT_ENV: &str = "GAUNTLET_ONNXRUNTIME_WHEEL";

fn ort_dylib_path() -> Option<std::ffi::OsString> {
    std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty())
}

/// What an agent started on this machine with no library of the rig's is told in
/// [`WHEEL_HINT_ENV`]: where this process finds the wheel, asked of Python once per process.
/// `None` where [`discover`] would not look at the wheel (`ORT_DYLIB_PATH` comes first, and the
/// agent inherits it).
pub fn wheel_hint() -> Option<std::ffi::OsString> {
    if ort_dylib_path().is_some() {
        return None;
    }
    Some(
        python_wheel_dir()
            .map(PathBuf::into_os_string)
            .unwrap_or_default(),
    )
}

fn python_wheel_dir() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| match std::env::var_os(WHEEL_HINT_ENV) {
            Some(hint) => (!hint.is_empty()).then(|| PathBuf::from(hint)),
            None => ask_python_for_wheel(),
        })
        .clone()
}

/// The wheel's package folder, found without importing it (an import costs ~0.3 s per agent).
fn ask_python_for_wheel() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('onnxruntime'); print(s.submodule_search_locations[0] if s else '')",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

fn system_library_dirs() -> Vec<PathBuf> {
    let from_env = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect::<Vec<_>>())
        .unwrap_or_default();
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    from_env
        .into_iter()
        .chain(
            [
                "/usr/local/lib".to_string(),
                format!("/usr/lib/{triple}"),
                format!("/lib/{triple}"),
                "/usr/lib".to_string(),
            ]
            .map(PathBuf::from),
        )
        .collect()
}

/// The most specific `libonnxruntime.so*` in `dir` (`.so.1.32.0` over the `.so` link).
fn newest_library(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(LIB_PREFIX))
                && p.is_file()
        })
        .collect();
    found.sort_by_key(|p| p.as_os_str().len());
    found.pop()
}

/// `ort` allows one library and one environment per process: every [`OnnxRuntime`] shares the
/// first one opened, and a second, different library is refused rather than silently ignored.
static PROCESS_LIBRARY: Mutex<Option<(PathBuf, Arc<Loaded>)>> = Mutex::new(None);

struct Loaded {
    environment: Environment,
    info: RuntimeInfo,
}

/// The onnxruntime runtime; the library is found and loaded on first use.
pub struct OnnxRuntime {
    configured: Option<PathBuf>,
    loaded: OnceLock<Result<Arc<Loaded>, String>>,
}

impl OnnxRuntime {
    /// `configured` is the rig's library path, tried before the rest of [`discover`]'s list.
    pub fn new(configured: Option<PathBuf>) -> OnnxRuntime {
        OnnxRuntime {
            configured,
            loaded: OnceLock::new(),
        }
    }

    fn loaded(&self) -> Result<&Arc<Loaded>, RuntimeError> {
        self.loaded
            .get_or_init(|| open(self.configured.as_deref()))
            .as_ref()
            .map_err(|reason| RuntimeError::RuntimeUnavailable {
                runtime: ONNXRUNTIME.into(),
                reason: format!("{reason}; {INSTALL_HINT}"),
            })
    }
}

fn open(configured: Option<&Path>) -> Result<Arc<Loaded>, String> {
    let path = discover(configured)?;
    let path = path.canonicalize().unwrap_or(path);
    let mut process = PROCESS_LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
    match process.as_ref() {
        Some((other, _)) if *other != path => Err(format!(
            "this process already runs onnxruntime from `{}`, not `{}`",
            other.display(),
            path.display()
        )),
        Some((_, loaded)) => Ok(Arc::clone(loaded)),
        None => {
            let loaded = Arc::new(start(path.clone())?);
            *process = Some((path, Arc::clone(&loaded)));
            Ok(loaded)
        }
    }
}

fn start(path: PathBuf) -> Result<Loaded, String> {
    let sha256 = library_sha256(&path, digest_cache_dir().as_deref())
        .map_err(|e| format!("read `{}`: {e}", path.display()))?;
    let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
    let environment = builder
        .with_name("gauntlet")
        .build()
        .map_err(|e| format!("start onnxruntime from `{}`: {e}", path.display()))?;
    let version = library_version(&path)?;
    let providers = available_providers()?;
    Ok(Loaded {
        environment,
        info: RuntimeInfo {
            name: ONNXRUNTIME.into(),
            version,
            providers,
            library: Some(path),
            library_sha256: Some(sha256),
        },
    })
}

/// Where digests of libraries are kept between agent starts: `$XDG_CACHE_HOME/gauntlet/digests`,
/// else `~/.cache/gauntlet/digests`; none without a home.
fn digest_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("gauntlet").join("digests"))
}

/// The library's SHA-256, which results record as the build's provenance. Hashing the wheel's
/// 35 MB took 70 ms of every agent start here (more on a Pi 4, whose cores lack SHA instructions),
/// and an agent starts for every repeat, so the digest is kept in `cache`, under the file's
/// identity: device, inode, size and modification time. An installer that replaces the library writes a new file (a new inode), so
/// a stale digest needs a rewrite in place to the same size within one tick of the file clock.
fn library_sha256(path: &Path, cache: Option<&Path>) -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let identity = format!(
        "{}\0{}\0{}\0{}\0{}.{}",
        path.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let entry = cache.map(|dir| dir.join(hex::encode(Sha256::digest(identity.as_bytes()))));
    if let Some(entry) = &entry
        && let Ok(text) = std::fs::read_to_string(entry)
        && let Ok(bytes) = hex::decode(text.trim())
        && let Ok(digest) = <[u8; 32]>::try_from(bytes)
    {
        return Ok(digest);
    }
    let digest: [u8; 32] = Sha256::digest(std::fs::read(path)?).into();
    // A cache that cannot be written only costs the next start the hash again.
    if let Some(entry) = &entry
        && let Some(dir) = entry.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Written aside and renamed, so a concurrent start never reads half a digest.
        let aside = entry.with_extension(format!("{}.tmp", std::process::id()));
        if std::fs::write(&aside, hex::encode(digest)).is_ok() {
            let _ = std::fs::rename(&aside, entry);
        }
    }
    Ok(digest)
}

/// `OrtGetApiBase()->GetVersionString()`, which `ort` checks but does not expose.
fn library_version(path: &Path) -> Result<String, String> {
    // SAFETY: the same library `ort` has already loaded and checked exports `OrtGetApiBase`; the
    // handle only bumps its reference count, and the version string is static in the library.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| e.to_string())?;
        let get: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = lib
            .get(b"OrtGetApiBase")
            .map_err(|e| format!("`{}` has no OrtGetApiBase: {e}", path.display()))?;
        let base = get();
        if base.is_null() {
            return Err(format!("`{}` returned no API base", path.display()));
        }
        let version = ((*base).GetVersionString)();
        Ok(CStr::from_ptr(version).to_string_lossy().into_owned())
    }
}

/// Providers compiled into the library, short and lowercase (`CUDAExecutionProvider` → `cuda`).
fn available_providers() -> Result<Vec<String>, String> {
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut n: c_int = 0;
    // SAFETY: the C API fills `list` with `n` NUL-terminated strings, released below.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut list, &mut n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Err("onnxruntime could not list its execution providers".into());
        }
        let names = (0..n.max(0) as usize)
            .map(|i| short_provider(&CStr::from_ptr(*list.add(i)).to_string_lossy()))
            .collect();
        let _ = (api.ReleaseAvailableProviders)(list, n);
        Ok(names)
    }
}

fn short_provider(canonical: &str) -> String {
    canonical
        .strip_suffix("ExecutionProvider")
        .unwrap_or(canonical)
        .to_lowercase()
}

/// The `ort` dispatch for a short provider name, failing the session rather than falling back
/// silently when the provider cannot start.
fn provider(name: &str) -> Option<ExecutionProviderDispatch> {
    let dispatch = match name {
        "cpu" => ep::CPU::default().build(),
        "cuda" => ep::CUDA::default().build(),
        "tensorrt" => ep::TensorRT::default().build(),
        "xnnpack" => ep::XNNPACK::default().build(),
        "acl" => ep::ACL::default().build(),
        _ => return None,
    };
    Some(dispatch.error_on_failure())
}

fn level(g: GraphOptimization) -> GraphOptimizationLevel {
    match g {
        GraphOptimization::Disabled => GraphOptimizationLevel::Disable,
        GraphOptimization::Basic => GraphOptimizationLevel::Level1,
        GraphOptimization::Extended => GraphOptimizationLevel::Level2,
        GraphOptimization::All => GraphOptimizationLevel::All,
    }
}

fn dtype(ty: TensorElementType) -> String {
    use TensorElementType::*;
    match ty {
        Float32 => "f32".into(),
        Float16 => "f16".into(),
        Float64 => "f64".into(),
        Int64 => "i64".into(),
        Int32 => "i32".into(),
        Int8 => "i8".into(),
        Uint8 => "u8".into(),
        Bool => "bool".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn tensor_info(name: &str, ty: &ValueType) -> TensorInfo {
    match ty {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => TensorInfo {
            name: name.into(),
            shape: Some(
                shape
                    .iter()
                    .zip(dimension_symbols.iter())
                    .map(|(&d, sym)| match (d, sym.is_empty()) {
                        (d, _) if d >= 0 => Dim::Fixed(d as usize),
                        (_, false) => Dim::Symbol(sym.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect(),
            ),
            dtype: Some(dtype(*ty)),
        },
        _ => TensorInfo {
            name: name.into(),
            shape: None,
            dtype: None,
        },
    }
}

pub struct OnnxModel {
    session: Session,
    info: ModelInfo,
    window_shape: Vec<usize>,
    input_shape: Vec<i64>,
    input_name: String,
    output_is_f32: bool,
}

impl Runtime for OnnxRuntime {
    fn name(&self) -> &'static str {
        ONNXRUNTIME
    }

    fn check(&self) -> Result<RuntimeInfo, RuntimeError> {
        self.loaded().map(|l| l.info.clone())
    }

    fn load(&self, onnx: &[u8], opts: &LoadOptions) -> Result<Box<dyn LoadedModel>, RuntimeError> {
        let loaded = self.loaded()?;
        let settings = &opts.runtime;
        let mut providers = Vec::new();
        for name in &settings.providers {
            match provider(name).filter(|_| loaded.info.providers.contains(name)) {
                Some(p) => providers.push(p),
                None => {
                    return Err(RuntimeError::ProviderUnavailable {
                        runtime: ONNXRUNTIME.into(),
                        provider: name.clone(),
                        available: loaded.info.providers.clone(),
                    });
                }
            }
        }
        if settings.threads == 0 {
            return Err(load_err("onnxruntime needs at least one intra-op thread"));
        }
        let ort_err = |what: &str, e: String| load_err(format!("{what}: {e}"));
        let mut builder = Session::builder(&loaded.environment)
            .map_err(|e| ort_err("create an onnxruntime session", e.to_string()))?
            .with_intra_threads(settings.threads)
            .map_err(|e| ort_err("set intra-op threads", e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| ort_err("set inter-op threads", e.to_string()))?
            .with_optimization_level(level(settings.optimization))
            .map_err(|e| ort_err("set the graph optimisation level", e.to_string()))?;
        if !providers.is_empty() {
            builder = builder
                .with_execution_providers(providers)
                .map_err(|e| ort_err("register execution providers", e.to_string()))?;
        }
        let session = builder
            .commit_from_memory(onnx)
            .map_err(|e| ort_err("load the model into onnxruntime", e.to_string()))?;

        let inputs: Vec<TensorInfo> = session
            .inputs()
            .iter()
            .map(|o| tensor_info(o.name(), o.dtype()))
            .collect();
        let outputs: Vec<TensorInfo> = session
            .outputs()
            .iter()
            .map(|o| tensor_info(o.name(), o.dtype()))
            .collect();
        let selected_input = select_input(&inputs, opts.input_name.as_deref())?;
        let selected_output = select_output(&outputs, &opts.output)?;
        let declared = &inputs[selected_input];
        check_declared_fits(declared, &opts.window_shape)?;
        if declared.dtype.as_deref() != Some("f32") {
            return Err(load_err(format!(
                "input '{}' has element type {}; only f32 inputs are supported",
                declared.name,
                declared.dtype.as_deref().unwrap_or("?")
            )));
        }
        let output_is_f32 = match outputs[selected_output].dtype.as_deref() {
            Some("f32") => true,
            Some("i64") => false,
            other => {
                return Err(load_err(format!(
                    "output '{}' has element type {}; f32 and i64 outputs are supported",
                    outputs[selected_output].name,
                    other.unwrap_or("?")
                )));
            }
        };
        // The operator list comes from the file itself; onnxruntime does not expose it.
        use tract_onnx::prelude::Framework;
        let ops = tract_onnx::onnx()
            .proto_model_for_read(&mut &onnx[..])
            .ok()
            .and_then(|p| p.graph.as_ref().map(graph_ops))
            .unwrap_or_default();
        let mut model = OnnxModel {
            session,
            input_name: declared.name.clone(),
            info: ModelInfo {
                inputs,
                outputs,
                selected_input,
                selected_output,
                output_len: 0,
                ops,
            },
            input_shape: opts.window_shape.iter().map(|&d| d as i64).collect(),
            window_shape: opts.window_shape.clone(),
            output_is_f32,
        };
        // Output shapes are often symbolic: one zero window gives the length the board returns.
        let mut out = Vec::new();
        model
            .run(&vec![0.0; opts.window_shape.iter().product()], &mut out)
            .map_err(|e| load_err(format!("run a first window: {e}")))?;
        model.info.output_len = out.len();
        Ok(Box::new(model))
    }
}

impl LoadedModel for OnnxModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run(&mut self, window: &[f32], out: &mut Vec<f32>) -> Result<(), RuntimeError> {
        check_window(window, &self.window_shape)?;
        let run_err = |e: ort::Error| RuntimeError::Run {
            reason: e.to_string(),
        };
        let input = TensorRef::from_array_view((&self.input_shape[..], window)).map_err(run_err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => input])
            .map_err(run_err)?;
        let value = &outputs[self.info.selected_output];
        out.clear();
        if self.output_is_f32 {
            out.extend_from_slice(value.try_extract_tensor::<f32>().map_err(run_err)?.1);
        } else {
            out.extend(
                value
                    .try_extract_tensor::<i64>()
                    .map_err(run_err)?
                    .1
                    .iter()
                    .map(|&v| v as f32),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_digest_is_kept_and_recomputed_once_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (library, cache) = (
            dir.path().join("libonnxruntime.so"),
            dir.path().join("cache"),
        );
        std::fs::write(&library, b"first build").unwrap();
        let first: [u8; 32] = Sha256::digest(b"first build").into();
        assert_eq!(library_sha256(&library, Some(&cache)).unwrap(), first);
        // The kept digest is what a second start reads, not the file's bytes.
        let entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        std::fs::write(&entries[0], hex::encode([7u8; 32])).unwrap();
        assert_eq!(library_sha256(&library, Some(&cache)).unwrap(), [7u8; 32]);
        // A new library in its place is hashed afresh.
        std::fs::write(&library, b"second, longer build").unwrap();
        let second: [u8; 32] = Sha256::digest(b"second, longer build").into();
        assert_eq!(library_sha256(&library, Some(&cache)).unwrap(), second);
        // Without a cache, and with a damaged entry, the file itself is hashed.
        assert_eq!(library_sha256(&library, None).unwrap(), second);
        for entry in std::fs::read_dir(&cache).unwrap() {
            std::fs::write(entry.unwrap().path(), "not a digest").unwrap();
        }
        assert_eq!(library_sha256(&library, Some(&cache)).unwrap(), second);
    }
}
