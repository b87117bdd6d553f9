#!/bin/sh
# Example fail hook: runs on each failure below the recovery threshold.
echo "check failed with exit code $HEAT_FAIL_CODE at $HEAT_FAIL_TIME"
echo "check pid $HEAT_FAIL_PID, interval ${HEAT_FAIL_INTERVAL}s, probe $HEAT_PROBE"
