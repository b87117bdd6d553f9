#!/bin/sh
# Example recovery hook: repairs what the check looks at.
state=${HEAT_EXAMPLE_STATE:-/tmp/heat-example}
echo "recovering after $HEAT_FAIL_CNT consecutive failures"
echo "first failure at $HEAT_FAIL_TIME, latest at $HEAT_FAIL_TIME_LAST (exit code $HEAT_FAIL_CODE, pid $HEAT_FAIL_PID)"
[ -n "$HEAT_TARGET_PID" ] && echo "target pid $HEAT_TARGET_PID"
mkdir -p "$state" && touch "$state/healthy"
echo "restored $state/healthy"
