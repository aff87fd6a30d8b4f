//! A model skeleton: the bench's model folders with every file as it is except the tensor
//! data. Each weights file (`.safetensors`, `.gguf`) is kept as its header alone (safetensors'
//! JSON, GGUF's metadata and tensor infos) in `<file>.header`, and `skeleton.json` lists them
//! with their full sizes. A few MB instead of 190: small enough to carry to a machine that
//! `random_weights` then rebuilds full-size files on.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use serde::{Deserialize, Serialize};
use tora_inference_gateway::model_dir::MINILM_L6_V2;
use tora_inference_gateway::models::llama::SMOLLM2_135M_GGUF;

use crate::tensor_layout::{Layout, TensorFileFormat};

/// The skeleton's table of contents, at its root.
pub(crate) const MANIFEST: &str = "skeleton.json";
/// What a weights file's header is saved as, after its own name.
const HEADER_SUFFIX: &str = ".header";

/// One weights file kept as its header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WeightsFile {
    /// The file's path under the models folder.
    pub path: PathBuf,
    /// Its header's path under the skeleton.
    pub header: PathBuf,
    /// The whole file's size in bytes.
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub weights_files: Vec<WeightsFile>,
}

impl Manifest {
    pub(crate) fn read(skeleton: &Path) -> anyhow::Result<Self> {
        let path = skeleton.join(MANIFEST);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The model folders the bench loads, relative to the models folder.
pub(crate) fn model_dirs() -> [PathBuf; 2] {
    let under_models =
        |p: &Path| p.strip_prefix(".cache/models").map(Path::to_path_buf).unwrap_or_else(|_| p.into());
    let gguf = Path::new(SMOLLM2_135M_GGUF);
    [under_models(Path::new(MINILM_L6_V2)), under_models(gguf.parent().unwrap_or(gguf))]
}

/// Writes the skeleton of the bench's models in `models` to `out` (created; must not exist
/// yet or be empty). Returns its size in bytes.
pub(crate) fn export(models: &Path, out: &Path) -> anyhow::Result<u64> {
    ensure!(
        !out.exists() || std::fs::read_dir(out)?.next().is_none(),
        "{} exists and is not empty",
        out.display()
    );
    let mut manifest = Manifest::default();
    let mut size = 0;
    for dir in model_dirs() {
        let src = models.join(&dir);
        ensure!(src.is_dir(), "{} is missing: run scripts/fetch-models.sh", src.display());
        for rel in files_under(&src)? {
            let (from, rel) = (src.join(&rel), dir.join(&rel));
            let to = out.join(&rel);
            std::fs::create_dir_all(to.parent().unwrap_or(out))?;
            if TensorFileFormat::of(&from).is_none() {
                std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
                size += std::fs::metadata(&to)?.len();
                continue;
            }
            let (header, _) = Layout::read(&from)?;
            let header_rel = PathBuf::from(format!("{}{HEADER_SUFFIX}", rel.display()));
            std::fs::write(out.join(&header_rel), &header)?;
            size += header.len() as u64;
            let bytes = std::fs::metadata(&from)?.len();
            manifest.weights_files.push(WeightsFile { path: rel, header: header_rel, bytes });
        }
    }
    ensure!(!manifest.weights_files.is_empty(), "no weights files under {}", models.display());
    let json = serde_json::to_vec_pretty(&manifest)?;
    size += json.len() as u64;
    std::fs::write(out.join(MANIFEST), json)?;
    Ok(size)
}

/// Every file under `dir`, relative to it, in a fixed order.
pub(crate) fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("listing {}", dir.join(&rel).display()))?;
        for entry in entries {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() { pending.push(rel) } else { out.push(rel) }
        }
    }
    out.sort();
    Ok(out)
}
