#!/bin/sh
# Example check: healthy while a flag file exists. Now and then it "breaks"
# the service by removing the flag, so the fail and recovery hooks get to run.
state=${HEAT_EXAMPLE_STATE:-/tmp/heat-example}
mkdir -p "$state"
[ -e "$state/started" ] || { touch "$state/started" "$state/healthy"; }

roll=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
if [ "$roll" -lt 40 ]; then
    rm -f "$state/healthy"
fi

if [ -e "$state/healthy" ]; then
    echo "service healthy (probe $HEAT_PROBE)"
    exit 0
fi
echo "service unhealthy: $state/healthy is missing" >&2
exit 3
