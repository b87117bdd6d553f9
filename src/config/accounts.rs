//! Who a probe's children run as: `user`, `group` and `hook_user` resolved at
//! start from the user and group databases, as systemd's `User=`/`Group=` are,
//! with supplementary groups as initgroups sets them.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use super::env::Env;
use super::options::Raw;
use super::{Account, ConfigError, Credentials, Reason};

/// The credentials `user` and `group` ask for; `None` when neither is set
/// (heat's own). Only root may run children as someone else.
pub(super) fn resolve(
    user: Option<&Raw<Account>>,
    group: Option<&Raw<Account>>,
    env: &Env,
) -> Result<Option<Credentials>, ConfigError> {
    let (user_raw, entry) = match (user, group) {
        (None, None) => return Ok(None),
        (Some(u), _) => (Some(u), lookup_user(u)?),
        // A group alone: heat's own user with that group.
        (None, Some(_)) => {
            let own = User::from_uid(Uid::from_raw(env.euid)).ok().flatten();
            let own = own.ok_or_else(|| {
                ConfigError::value(group.expect("matched").origin.clone(), "", Reason::NoSuchUser)
            })?;
            (None, own)
        }
    };
    let gid = match group {
        Some(g) => lookup_group(g)?,
        None => entry.gid.as_raw(),
    };
    let uid = entry.uid.as_raw();
    if env.euid != 0 && (uid != env.euid || gid != nix::unistd::getegid().as_raw()) {
        let culprit = user_raw.or(group).expect("one is set");
        return Err(culprit.error(Reason::NotRoot(env.euid)));
    }
    let groups = supplementary(&entry.name, gid).map_err(|e| {
        user_raw.or(group).expect("one is set").error(Reason::UserDatabase(e.into()))
    })?;
    Ok(Some(Credentials {
        name: entry.name,
        uid,
        gid,
        groups,
        home: entry.dir,
        shell: entry.shell,
    }))
}

fn lookup_user(raw: &Raw<Account>) -> Result<User, ConfigError> {
    let found = match &raw.value {
        Account::Name(name) => User::from_name(name),
        Account::Id(uid) => User::from_uid(Uid::from_raw(*uid)),
    };
    match found {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(raw.error(Reason::NoSuchUser)),
        Err(e) => Err(raw.error(Reason::UserDatabase(e.into()))),
    }
}

fn lookup_group(raw: &Raw<Account>) -> Result<u32, ConfigError> {
    let found = match &raw.value {
        Account::Name(name) => Group::from_name(name),
        Account::Id(gid) => Group::from_gid(Gid::from_raw(*gid)),
    };
    match found {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(raw.error(Reason::NoSuchGroup)),
        Err(e) => Err(raw.error(Reason::UserDatabase(e.into()))),
    }
}

/// The groups initgroups(3) would give `name` with primary group `gid`.
fn supplementary(name: &str, gid: u32) -> nix::Result<Vec<u32>> {
    let Ok(name) = CString::new(name) else { return Ok(vec![gid]) };
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if !groups.contains(&gid) {
        groups.insert(0, gid);
    }
    groups.dedup();
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn raw(text: &str) -> Raw<Account> {
        let value = <Account as crate::config::Value>::parse(text).unwrap();
        Raw { value, text: text.into(), origin: Origin::flag("--user") }
    }

    fn as_root() -> Env {
        Env { euid: 0, ..Env::current() }
    }

    #[test]
    fn nobody_is_found_by_name_and_by_uid() {
        let by_name = resolve(Some(&raw("nobody")), None, &as_root()).unwrap().unwrap();
        assert_eq!((by_name.name.as_str(), by_name.uid), ("nobody", 65534));
        assert!(by_name.groups.contains(&by_name.gid), "{by_name:?}");
        let by_uid = resolve(Some(&raw("65534")), None, &as_root()).unwrap().unwrap();
        assert_eq!(by_uid, by_name);
    }

    #[test]
    fn a_group_replaces_the_primary_one() {
        let g = Raw { origin: Origin::flag("--group"), ..raw("0") };
        let c = resolve(Some(&raw("nobody")), Some(&g), &as_root()).unwrap().unwrap();
        assert_eq!((c.uid, c.gid), (65534, 0));
        assert!(c.groups.contains(&0), "{c:?}");
    }

    #[test]
    fn unknown_users_and_groups_are_refused() {
        let e = resolve(Some(&raw("no-such-user-here")), None, &as_root()).unwrap_err();
        assert_eq!(e.reason(), Some(&Reason::NoSuchUser));
        assert_eq!(crate::text::chain(&e), "--user no-such-user-here: no such user");
        let g = Raw { origin: Origin::flag("--group"), ..raw("no-such-group-here") };
        let e = resolve(Some(&raw("nobody")), Some(&g), &as_root()).unwrap_err();
        assert_eq!(e.reason(), Some(&Reason::NoSuchGroup));
    }

    #[test]
    fn another_user_needs_root() {
        let user = Env { euid: 1000, ..Env::current() };
        let e = resolve(Some(&raw("nobody")), None, &user).unwrap_err();
        assert_eq!(e.reason(), Some(&Reason::NotRoot(1000)));
    }
}
