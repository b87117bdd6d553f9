complete -c heat -s s -l script -d 'Executable check script, instead of a command' -r -F
complete -c heat -l pid -d 'Target process, signalled on failure; heat exits when it does' -r -f
complete -c heat -l pidfile -d 'Target = the live process this file names; followed across restarts' -r -F
complete -c heat -s i -l interval -d 'Time between check starts [default: 30s]' -r -f
complete -c heat -l timeout -d 'Kill a check running longer; it fails with code 124 [default: the interval]' -r -f
complete -c heat -l signal -d 'Sent to the target on every failure in normal mode [default: HUP]' -r -f -a "HUP\t''
INT\t''
QUIT\t''
ILL\t''
TRAP\t''
ABRT\t''
BUS\t''
FPE\t''
KILL\t''
USR1\t''
SEGV\t''
USR2\t''
PIPE\t''
ALRM\t''
TERM\t''
STKFLT\t''
CHLD\t''
CONT\t''
STOP\t''
TSTP\t''
TTIN\t''
TTOU\t''
URG\t''
XCPU\t''
XFSZ\t''
VTALRM\t''
PROF\t''
WINCH\t''
IO\t''
PWR\t''
SYS\t''
RTMIN\t''
RTMAX\t''"
complete -c heat -l fail -d 'Fail hook, run on each failure in normal mode' -r -F
complete -c heat -l recovery -d 'Recovery hook, run when --threshold consecutive failures are reached' -r -F
complete -c heat -l threshold -d 'Consecutive failures that start recovery, at least 1 [default: 1]' -r -f
complete -c heat -l start-period -d 'Grace after start: failures are logged but not counted [default: 0]' -r -f
complete -c heat -l recovery-timeout -d 'Time checks may keep failing after a recovery hook [default: threshold checks]' -r -f
complete -c heat -l fault-signal -d 'Sent to the target on entering each recovery round' -r -f -a "HUP\t''
INT\t''
QUIT\t''
ILL\t''
TRAP\t''
ABRT\t''
BUS\t''
FPE\t''
KILL\t''
USR1\t''
SEGV\t''
USR2\t''
PIPE\t''
ALRM\t''
TERM\t''
STKFLT\t''
CHLD\t''
CONT\t''
STOP\t''
TSTP\t''
TTIN\t''
TTOU\t''
URG\t''
XCPU\t''
XFSZ\t''
VTALRM\t''
PROF\t''
WINCH\t''
IO\t''
PWR\t''
SYS\t''
RTMIN\t''
RTMAX\t''"
complete -c heat -l success-signal -d 'Sent to the target when a recovery succeeds' -r -f -a "HUP\t''
INT\t''
QUIT\t''
ILL\t''
TRAP\t''
ABRT\t''
BUS\t''
FPE\t''
KILL\t''
USR1\t''
SEGV\t''
USR2\t''
PIPE\t''
ALRM\t''
TERM\t''
STKFLT\t''
CHLD\t''
CONT\t''
STOP\t''
TSTP\t''
TTIN\t''
TTOU\t''
URG\t''
XCPU\t''
XFSZ\t''
VTALRM\t''
PROF\t''
WINCH\t''
IO\t''
PWR\t''
SYS\t''
RTMIN\t''
RTMAX\t''"
complete -c heat -l hook-timeout -d 'A hook running longer is ended and logged as FAIL [default: 5m]' -r -f
complete -c heat -l max-output -d 'Output kept per check or hook run [default: 64KiB]' -r -f
complete -c heat -l user -d 'Run checks and hooks as this user (a name or uid); needs root [default: heat\'s own]' -r -f
complete -c heat -l group -d 'Run checks and hooks with this group (a name or gid) [default: the user\'s primary]' -r -f
complete -c heat -l hook-user -d 'Run hooks as this user instead [default: the probe\'s user]' -r -f
complete -c heat -l workdir -d 'Directory checks and hooks run in [default: heat.toml\'s directory, or heat\'s own]' -r -f -a "(__fish_complete_directories)"
complete -c heat -l env -d 'A variable added to the environment of checks and hooks (repeat for more)' -r -f
complete -c heat -l memory-max -d 'Memory limit of each check\'s and hook\'s cgroup (memory.max) [default: none]' -r -f
complete -c heat -l pids-max -d 'Most processes in each check\'s and hook\'s cgroup (pids.max) [default: none]' -r -f
complete -c heat -l cpu-max -d 'CPU time of each check\'s and hook\'s cgroup, as 50% of one CPU (cpu.max) [default: none]' -r -f
complete -c heat -l log -d 'The verbose log, appended to [default: heat.verbose.log]' -r -F
complete -c heat -l control-socket -d 'The control socket for `heat status`, `pause`, `resume` and `run`' -r -F
complete -c heat -l metrics-listen -d 'Serve Prometheus metrics on this address (GET /metrics, /status.json)' -r
complete -c heat -s c -l config -d 'Service mode: run the probes of this heat.toml' -r -F
complete -c heat -s t -l check-config -d 'Validate, print the effective settings and exit (0 valid, 2 not)'
complete -c heat -s q -l quiet -d 'No per-check line on stdout'
complete -c heat -s v -l verbose -d 'More diagnostics on stderr (repeat for more)'
complete -c heat -s h -l help -d 'Print help (see more with \'--help\')'
complete -c heat -s V -l version -d 'Print version'
