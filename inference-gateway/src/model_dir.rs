//! Where a model's files live: `scripts/fetch-models.sh` fills `.cache/models/<name>/` at the
//! repository root, and every loader names a missing file the same way.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// all-MiniLM-L6-v2's folder, relative to the repository root.
pub const MINILM_L6_V2: &str = ".cache/models/all-minilm-l6-v2";

/// `dir/file`, or [`Error::ModelMissing`] (which points at the fetch script) when absent.
pub fn model_file(dir: &Path, file: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() { Ok(path) } else { Err(Error::ModelMissing { path }) }
}
