//! Helpers shared by the unit tests.

use std::num::NonZeroU32;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::{
    Check, DEFAULT_HOOK_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_OUTPUT, ProbeConfig,
};

/// A fresh directory under the system temp dir (canonical), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("heat-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.canonicalize().unwrap())
    }

    /// Writes `name` with `body` and `mode`.
    pub fn file(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// An executable `#!/bin/sh` script that exits 0.
    pub fn script(&self, name: &str) -> PathBuf {
        self.file(name, "#!/bin/sh\nexit 0\n", 0o755)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A probe with every setting at its default: `true` in shell form.
pub fn probe_config(name: &str) -> ProbeConfig {
    ProbeConfig {
        name: name.into(),
        check: Check::Shell { command: "true".into() },
        display: "true".into(),
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_INTERVAL,
        target: None,
        signal: None,
        fail: None,
        recovery: None,
        threshold: NonZeroU32::MIN,
        start_period: Duration::ZERO,
        recovery_timeout: None,
        fault_signal: None,
        success_signal: None,
        hook_timeout: DEFAULT_HOOK_TIMEOUT,
        max_output: DEFAULT_MAX_OUTPUT,
        workdir: None,
        user: None,
        hook_user: None,
        env: Vec::new(),
        limits: Default::default(),
    }
}

/// The README's example probe: `curl -sf localhost/health_check`, exec form.
pub fn curl_probe() -> ProbeConfig {
    ProbeConfig {
        check: Check::Exec {
            program: "/usr/bin/curl".into(),
            args: vec!["-sf".into(), "localhost/health_check".into()],
        },
        display: "curl -sf localhost/health_check".into(),
        ..probe_config("cli")
    }
}
