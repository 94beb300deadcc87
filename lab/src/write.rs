//! Files written whole: a run killed at any instant leaves the old file or the new one.

use std::path::Path;

use crate::error::ExperimentError;

/// Writes `bytes` to `path` whole or not at all: into a temporary file in the same directory,
/// synced, then renamed over `path`. A process killed at any instant leaves the old file or the
/// new one.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExperimentError> {
    let name = path
        .file_name()
        .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    };
    let written = write().and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        ExperimentError::io(path, err)
    })
}
