//! As root, heat runs and reads only what root controls, as sshd's StrictModes
//! and sudo do: a config, script, hook, program or log, and every directory on
//! the way to it from `/`, must be owned by root (or heat's own uid) and not
//! writable by its group or others. A root-owned sticky directory (`/tmp`) is
//! fine on the way: there only a file's owner may replace it, and the file
//! itself must still be owned right. Symlinks are followed, and the path they
//! lead to is held to the same rules (the directory holding a symlink was
//! checked first, so nobody else could have planted it).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed on one path at most, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// Why a path is not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Writable by its group or others (`dir`: a directory on the way).
    Writable { path: PathBuf, mode: u32, dir: bool },
    /// Owned by someone heat does not trust.
    Owner { path: PathBuf, uid: u32, mode: u32, dir: bool },
    /// A component could not be examined.
    Unreadable { path: PathBuf, reason: String },
    /// More than [`MAX_LINKS`] symlinks.
    Loop { path: PathBuf },
}

impl Untrusted {
    /// What is wrong, and the fix, for an error that already named the file.
    pub fn reason(&self) -> String {
        let show = |p: &Path| crate::text::show_path(p);
        match self {
            Untrusted::Writable { mode, dir: false, .. } => {
                format!("mode {mode:04o} is group- or world-writable; chmod go-w it")
            }
            Untrusted::Writable { path, mode, dir: true } => format!(
                "directory {} (mode {mode:04o}) is group- or world-writable, so others could \
                 replace what is in it; chmod go-w {}",
                show(path),
                show(path)
            ),
            Untrusted::Owner { uid, mode, dir: false, .. } => format!(
                "owned by {} (mode {mode:04o}), not by root; as root heat runs only what root \
                 controls: chown root it",
                user_name(*uid)
            ),
            Untrusted::Owner { path, uid, mode, dir: true } => format!(
                "directory {} is owned by {} (mode {mode:04o}), not by root, so that user could \
                 replace what is in it; chown root {} or move the file",
                show(path),
                user_name(*uid),
                show(path)
            ),
            Untrusted::Unreadable { path, reason } => {
                format!("cannot examine {}: {reason}", show(path))
            }
            Untrusted::Loop { path } => format!("too many symlinks at {}", show(path)),
        }
    }
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason())
    }
}

impl std::error::Error for Untrusted {}

/// `uid 1000 (alice)`, or `uid 1000` when it has no name.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("uid {uid} ({})", crate::text::shown(&u.name)),
        _ => format!("uid {uid}"),
    }
}

/// Checks `path` (absolute, or relative to heat's cwd) and every directory on
/// the way to it. `owners` are the uids trusted besides root. A final component
/// that does not exist yet (a log heat will create) is not an error: its
/// directory is what counts then.
pub fn check(path: &Path, owners: &[u32]) -> Result<(), Untrusted> {
    let abs = std::path::absolute(path)
        .map_err(|e| Untrusted::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut links = 0;
    walk(&abs, owners, true, &mut links).map(|_| ())
}

/// Walks `abs` from `/`, checking each component; returns the path it resolves to.
fn walk(abs: &Path, owners: &[u32], last: bool, links: &mut usize) -> Result<PathBuf, Untrusted> {
    let root = Path::new("/");
    judge(root, &lstat(root)?, owners, false)?;
    let mut cur = root.to_path_buf();
    let parts: Vec<Component> = abs.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let name: &OsStr = match part {
            Component::Normal(name) => name,
            Component::ParentDir => {
                cur.pop();
                continue;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        let is_last = last && parts[i + 1..].iter().all(|p| matches!(p, Component::CurDir));
        let next = cur.join(name);
        let meta = match fs::symlink_metadata(&next) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_last => return Ok(next),
            Err(e) => return Err(unreadable(&next, &e)),
        };
        if meta.file_type().is_symlink() {
            *links += 1;
            if *links > MAX_LINKS {
                return Err(Untrusted::Loop { path: next });
            }
            let target = fs::read_link(&next).map_err(|e| unreadable(&next, &e))?;
            // A relative target is relative to the directory holding the link.
            cur = walk(&cur.join(target), owners, is_last, links)?;
            continue;
        }
        judge(&next, &meta, owners, is_last)?;
        cur = next;
    }
    Ok(cur)
}

fn lstat(path: &Path) -> Result<fs::Metadata, Untrusted> {
    fs::symlink_metadata(path).map_err(|e| unreadable(path, &e))
}

fn unreadable(path: &Path, e: &io::Error) -> Untrusted {
    Untrusted::Unreadable { path: path.to_path_buf(), reason: crate::text::io_reason(e) }
}

/// One component: the file itself (`last`) or a directory on the way.
fn judge(path: &Path, meta: &fs::Metadata, owners: &[u32], last: bool) -> Result<(), Untrusted> {
    let mode = meta.permissions().mode() & 0o7777;
    let uid = meta.uid();
    let dir = !last;
    if uid != 0 && !owners.contains(&uid) {
        return Err(Untrusted::Owner { path: path.to_path_buf(), uid, mode, dir });
    }
    let sticky_root_dir = dir && meta.is_dir() && uid == 0 && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_root_dir {
        return Err(Untrusted::Writable { path: path.to_path_buf(), mode, dir });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::{chown, symlink};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn mode(p: &Path, m: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    /// A temp dir whose own path is trusted (mode 0755, root's).
    fn dir() -> TempDir {
        let d = TempDir::new("trust");
        mode(&d.0, 0o755);
        d
    }

    #[test]
    fn a_root_file_in_root_directories_is_trusted() {
        if !is_root() {
            return;
        }
        let d = dir();
        let f = d.file("check.sh", "#!/bin/sh\n", 0o755);
        assert_eq!(check(&f, &[]), Ok(()));
        assert_eq!(check(Path::new("/bin/sh"), &[]), Ok(()), "through the /bin symlink");
        assert_eq!(check(&d.0.join("not-yet.log"), &[]), Ok(()), "a file to be created");
    }

    #[test]
    fn a_file_writable_by_others_is_refused() {
        if !is_root() {
            return;
        }
        let d = dir();
        let f = d.file("check.sh", "#!/bin/sh\n", 0o775);
        let e = check(&f, &[]).unwrap_err();
        assert_eq!(e, Untrusted::Writable { path: f.clone(), mode: 0o775, dir: false });
        assert_eq!(e.reason(), "mode 0775 is group- or world-writable; chmod go-w it");
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused_unless_trusted() {
        if !is_root() {
            return;
        }
        let d = dir();
        let f = d.file("check.sh", "#!/bin/sh\n", 0o755);
        chown(&f, Some(1000), None).unwrap();
        let e = check(&f, &[]).unwrap_err();
        assert_eq!(e, Untrusted::Owner { path: f.clone(), uid: 1000, mode: 0o755, dir: false });
        assert!(e.reason().starts_with("owned by uid 1000"), "{}", e.reason());
        assert!(e.reason().ends_with("chown root it"), "{}", e.reason());
        assert_eq!(check(&f, &[1000]), Ok(()), "an owner heat trusts");
    }

    #[test]
    fn a_directory_on_the_way_is_held_to_the_same_rules() {
        if !is_root() {
            return;
        }
        let d = dir();
        let sub = d.0.join("etc");
        fs::create_dir(&sub).unwrap();
        let f = d.file("etc/check.sh", "#!/bin/sh\n", 0o755);
        mode(&sub, 0o777);
        let e = check(&f, &[]).unwrap_err();
        assert_eq!(e, Untrusted::Writable { path: sub.clone(), mode: 0o777, dir: true });
        assert!(e.reason().contains("chmod go-w"), "{}", e.reason());
        mode(&sub, 0o755);
        chown(&sub, Some(1000), None).unwrap();
        let e = check(&f, &[]).unwrap_err();
        assert_eq!(e, Untrusted::Owner { path: sub.clone(), uid: 1000, mode: 0o755, dir: true });
        assert!(e.reason().contains("chown root"), "{}", e.reason());
    }

    #[test]
    fn a_root_sticky_directory_is_fine_on_the_way_but_not_for_the_file() {
        if !is_root() {
            return;
        }
        let d = dir();
        let tmp = d.0.join("tmp");
        fs::create_dir(&tmp).unwrap();
        mode(&tmp, 0o1777);
        let f = d.file("tmp/check.sh", "#!/bin/sh\n", 0o755);
        assert_eq!(check(&f, &[]), Ok(()));
        chown(&f, Some(1000), None).unwrap();
        assert!(matches!(check(&f, &[]), Err(Untrusted::Owner { dir: false, .. })));
        // A sticky directory owned by a user is that user's.
        chown(&f, Some(0), None).unwrap();
        chown(&tmp, Some(1000), None).unwrap();
        assert!(matches!(check(&f, &[]), Err(Untrusted::Owner { dir: true, .. })));
    }

    #[test]
    fn symlinks_are_followed_and_their_targets_checked() {
        if !is_root() {
            return;
        }
        let d = dir();
        let bad = d.0.join("bad");
        fs::create_dir(&bad).unwrap();
        let real = d.file("bad/check.sh", "#!/bin/sh\n", 0o755);
        symlink(&real, d.0.join("link.sh")).unwrap();
        assert_eq!(check(&d.0.join("link.sh"), &[]), Ok(()));
        mode(&bad, 0o777);
        let e = check(&d.0.join("link.sh"), &[]).unwrap_err();
        assert_eq!(e, Untrusted::Writable { path: bad.clone(), mode: 0o777, dir: true });
        // A relative link, through a linked directory.
        mode(&bad, 0o755);
        symlink("bad", d.0.join("alias")).unwrap();
        assert_eq!(check(&d.0.join("alias/check.sh"), &[]), Ok(()));
        chown(&real, Some(1000), None).unwrap();
        let e = check(&d.0.join("alias/check.sh"), &[]).unwrap_err();
        assert_eq!(e, Untrusted::Owner { path: real, uid: 1000, mode: 0o755, dir: false });
    }

    #[test]
    fn a_symlink_loop_is_named() {
        let d = dir();
        symlink("b", d.0.join("a")).unwrap();
        symlink("a", d.0.join("b")).unwrap();
        assert!(matches!(check(&d.0.join("a"), &[]), Err(Untrusted::Loop { .. })));
    }
}
