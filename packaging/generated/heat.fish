complete -c heat -s i -l interval -d 'Time between check starts [default: 30s]' -r
complete -c heat -s s -l script -d 'Executable check script, instead of a command' -r -F
complete -c heat -l timeout -d 'Kill a check running longer; it fails with code 124 [default: the interval]' -r
complete -c heat -l pid -d 'Target process, signalled on failure; heat exits when it does' -r
complete -c heat -l pidfile -d 'Target = the live process this file names; followed across restarts' -r -F
complete -c heat -l signal -d 'Sent to the target on every failure in normal mode [default: HUP]' -r
complete -c heat -l fail -d 'Fail hook, run on each failure in normal mode' -r -F
complete -c heat -l recovery -d 'Recovery hook, run when --threshold consecutive failures are reached' -r -F
complete -c heat -l threshold -d 'Consecutive failures that start recovery, at least 1 [default: 1]' -r
complete -c heat -l start-period -d 'Grace after start: failures are logged but not counted [default: 0]' -r
complete -c heat -l recovery-timeout -d 'Time checks may keep failing after a recovery hook [default: threshold checks]' -r
complete -c heat -l fault-signal -d 'Sent to the target on entering each recovery round' -r
complete -c heat -l success-signal -d 'Sent to the target when a recovery succeeds' -r
complete -c heat -l log -d 'The verbose log, appended to [default: heat.verbose.log]' -r -F
complete -c heat -s c -l config -d 'Service mode: run the probes of this heat.toml' -r -F
complete -c heat -l hook-timeout -d 'A hook running longer is ended and logged as FAIL [default: 5m]' -r
complete -c heat -l max-output -d 'Output kept per check or hook run [default: 64KiB]' -r
complete -c heat -s t -l check-config -d 'Validate, print the effective settings and exit (0 valid, 2 not)'
complete -c heat -s q -l quiet -d 'No per-check line on stdout'
complete -c heat -s v -l verbose -d 'More diagnostics on stderr (repeat for more)'
complete -c heat -s h -l help -d 'Print help (see more with \'--help\')'
complete -c heat -s V -l version -d 'Print version'
