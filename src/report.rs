//! The `-t` report: each probe's effective settings, as heat would run them.

use std::time::Duration;

use crate::config::{Check, ProbeConfig, Settings, TargetSpec};

/// One block per probe, after the log and the containment in force.
pub fn describe(settings: &Settings) -> String {
    let containment = crate::cgroup::Containment::detect_only().describe();
    describe_with(settings, &containment)
}

fn describe_with(settings: &Settings, containment: &str) -> String {
    let mut out = format!("log = {}\ncontainment = {containment}\n", settings.log.display());
    let socket =
        settings.control_socket.as_ref().map_or("none".into(), |p| p.display().to_string());
    let metrics = settings.metrics_listen.map_or("off".into(), |a| a.to_string());
    out.push_str(&format!("control_socket = {socket}\nmetrics_listen = {metrics}\n"));
    let one = settings.probes.len() == 1;
    for probe in &settings.probes {
        out.push('\n');
        let phase =
            if one { Duration::ZERO } else { crate::reload::phase(&probe.name, probe.interval) };
        out.push_str(&format!("[probe.{}]\n", probe.name));
        for (key, value) in lines(probe, phase) {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

fn lines(p: &ProbeConfig, phase: Duration) -> Vec<(&'static str, String)> {
    let (form, program) = match &p.check {
        Check::Exec { program, .. } => ("exec", Some(program.display().to_string())),
        Check::Shell { .. } => ("shell", None),
        Check::Script { .. } => ("script", None),
    };
    let target = match &p.target {
        None => "-".to_string(),
        Some(TargetSpec::Pid(pid)) => format!("pid {pid}"),
        Some(TargetSpec::Pidfile(path)) => format!("pidfile {}", path.display()),
    };
    let mut lines = vec![("check", p.display.clone()), ("form", form.to_string())];
    lines.extend(program.map(|prog| ("program", prog)));
    lines.push(("target", target));
    lines.extend(p.option_lines());
    lines.push(("phase", humantime::format_duration(phase).to_string()));
    lines
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::config::{DEFAULT_INTERVAL, DEFAULT_LOG, Hook};
    use crate::signal::Signal;

    use crate::testutil::curl_probe as sample;

    fn settings_of(probes: Vec<ProbeConfig>) -> Settings {
        Settings {
            log: DEFAULT_LOG.into(),
            quiet: false,
            verbose: 0,
            check_only: true,
            probes,
            warnings: Vec::new(),
            config: None,
            control_socket: None,
            metrics_listen: None,
        }
    }

    #[test]
    fn describe_defaults() {
        let own = format!("heat's own (uid {})", nix::unistd::geteuid());
        assert_eq!(
            describe_with(&settings_of(vec![sample()]), "test"),
            format!(
                "log = heat.verbose.log\n\
             containment = test\n\
             control_socket = none\n\
             metrics_listen = off\n\
             \n\
             [probe.cli]\n\
             check = curl -sf localhost/health_check\n\
             form = exec\n\
             program = /usr/bin/curl\n\
             target = -\n\
             interval = 30s\n\
             timeout = 30s\n\
             signal = -\n\
             fail = -\n\
             recovery = -\n\
             threshold = 1\n\
             start_period = 0s\n\
             recovery_timeout = -\n\
             fault_signal = -\n\
             success_signal = -\n\
             hook_timeout = 5m\n\
             max_output = 64KiB\n\
             user = {own}\n\
             group = -\n\
             hook_user = {own}\n\
             workdir = -\n\
             env = -\n\
             memory_max = -\n\
             pids_max = -\n\
             cpu_max = -\n\
             phase = 0s\n"
            )
        );
    }

    #[test]
    fn describe_everything_set() {
        let hook = |p: &str| Some(Hook { path: p.into(), display: p.into() });
        let nobody = crate::config::Credentials {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534, 100],
            home: "/nonexistent".into(),
            shell: "/usr/sbin/nologin".into(),
        };
        let probe = ProbeConfig {
            check: Check::Script { path: "/etc/heat/check.sh".into() },
            display: "./check.sh".into(),
            interval: Duration::from_millis(1500),
            timeout: Duration::from_secs(1),
            target: Some(TargetSpec::Pidfile("/run/nginx.pid".into())),
            signal: Some(Signal::USR1),
            fail: hook("./notify.sh"),
            recovery: hook("./restart.sh"),
            threshold: NonZeroU32::new(3).unwrap(),
            start_period: Duration::from_secs(60),
            recovery_timeout: Some(Duration::from_secs(120)),
            fault_signal: Some(Signal::STOP),
            success_signal: Some("RTMIN+1".parse().unwrap()),
            hook_timeout: Duration::from_secs(30),
            max_output: 1000,
            workdir: Some("/etc/heat".into()),
            user: Some(std::sync::Arc::new(nobody.clone())),
            hook_user: Some(std::sync::Arc::new(nobody)),
            env: vec![("LANG".into(), "C".into()), ("TZ".into(), "UTC".into())],
            limits: crate::config::Limits {
                memory_max: Some(64 << 20),
                pids_max: Some(32),
                cpu_max: Some(crate::config::CpuQuota { percent: 50 }),
            },
            ..sample()
        };
        let text = describe_with(&settings_of(vec![probe]), "test");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "log = heat.verbose.log",
                "containment = test",
                "control_socket = none",
                "metrics_listen = off",
                "",
                "[probe.cli]",
                "check = ./check.sh",
                "form = script",
                "target = pidfile /run/nginx.pid",
                "interval = 1s 500ms",
                "timeout = 1s",
                "signal = SIGUSR1",
                "fail = ./notify.sh",
                "recovery = ./restart.sh",
                "threshold = 3",
                "start_period = 1m",
                "recovery_timeout = 2m",
                "fault_signal = SIGSTOP",
                "success_signal = SIGRTMIN+1",
                "hook_timeout = 30s",
                "max_output = 1000",
                "user = nobody (uid 65534)",
                "group = gid 65534, groups 65534 100",
                "hook_user = nobody (uid 65534)",
                "workdir = /etc/heat",
                "env = LANG, TZ",
                "memory_max = 64MiB",
                "pids_max = 32",
                "cpu_max = 50%",
                "phase = 0s",
            ]
        );
    }

    #[test]
    fn describe_many_probes_shows_their_phases() {
        let a = ProbeConfig { name: "a".into(), ..sample() };
        let web = ProbeConfig {
            name: "web".into(),
            check: Check::Shell { command: "true".into() },
            display: "true".into(),
            ..sample()
        };
        let text = describe_with(&settings_of(vec![a, web]), "test");
        let phase_a =
            humantime::format_duration(crate::reload::phase("a", DEFAULT_INTERVAL)).to_string();
        assert!(text.contains("[probe.a]\ncheck = curl"), "{text}");
        assert!(
            text.contains(&format!(
                "phase = {phase_a}\n\n[probe.web]\ncheck = true\nform = shell\ntarget = -\ninterval"
            )),
            "{text}"
        );
    }
}
