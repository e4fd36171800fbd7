//! The state file: what operators decided at runtime (server drain/maint, read-only mode,
//! address blocks),
//! written atomically on every change and read at start, so a restart or a binary
//! upgrade does not put a drained server back into rotation.

use crate::balance::AdminState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StateFile {
    /// "pool/server" → state, for servers that are not `ready`.
    #[serde(default)]
    pub servers: BTreeMap<String, AdminState>,
    /// Read-only mode as last switched (None: never switched; the config decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<crate::readonly::ReadonlyState>,
    /// Address blocks that had not ended when written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<crate::blocks::Block>,
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<StateFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a gatehouse state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state file atomically: a temporary file beside it, synced, then renamed.
pub fn save(path: &Path, state: &StateFile) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(state).unwrap_or_default())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("cannot write state file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("gatehouse-statefile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        assert_eq!(load(&path).unwrap(), StateFile::default());
        let mut s = StateFile::default();
        s.servers.insert("web/a".into(), AdminState::Drain);
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), s);
        std::fs::write(&path, "not json").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .contains("not a gatehouse state file"));
    }
}
