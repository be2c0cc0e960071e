#!/bin/sh
# The pd_pipeline image's entry point: the container's command picks the role.
#
#   code-server          the code location (pd_pipeline.definitions) over gRPC
#                        (PD_CODE_SERVER_PORT, 4000); runs the daemon launches execute here
#   webserver            the operators' Dagster UI (PD_WEBSERVER_PORT, 3000)
#   webserver-read-only  the UI for everyone else, refusing every mutation
#                        (PD_READ_ONLY_WEBSERVER_PORT, 3001)
#   daemon               sensors, schedules, the run queue, retries, run monitoring
#   anything else        run as given, e.g. `dagster job execute -m pd_pipeline -j
#                        render_pending_job` (CI) or `pd-pipeline status`
#
# The webservers and the daemon reach the code server at PD_CODE_SERVER_HOST:PD_CODE_SERVER_PORT
# (the image's workspace.yaml). Servers listen on PD_LISTEN_HOST (0.0.0.0). Arguments after a
# role are passed on (a repeated option wins over the default given here).
set -eu

WORKSPACE=${PD_WORKSPACE:-/opt/dagster/workspace.yaml}
LISTEN=${PD_LISTEN_HOST:-0.0.0.0}
CODE_PORT=${PD_CODE_SERVER_PORT:-4000}
UI_PORT=${PD_WEBSERVER_PORT:-3000}
READ_ONLY_PORT=${PD_READ_ONLY_WEBSERVER_PORT:-3001}

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0"
}

# The role this container was started with: the argument after this script in PID 1's command
# line (tini's), so the health check needs no file written anywhere.
started_as() {
    tr '\0' '\n' < /proc/1/cmdline | sed -n '/pd-pipeline-entrypoint$/{n;p;q}'
}

# A server bound to every address is asked on loopback.
local_host() {
    if [ "$LISTEN" = 0.0.0.0 ] || [ "$LISTEN" = "::" ]; then echo 127.0.0.1; else echo "$LISTEN"; fi
}

http_ok() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
        "http://$(local_host):$1/server_info"
}

# What `dagster api grpc-health-check` asks, without importing dagster (0.1 s, not 1.5 s).
grpc_ok() {
    python3 - "$(local_host):$1" << 'PY'
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    request = health_pb2.HealthCheckRequest(service="DagsterApi")
    status = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status
sys.exit(status != health_pb2.HealthCheckResponse.SERVING)
PY
}

healthcheck() {
    case "$(started_as)" in
        code-server) grpc_ok "$CODE_PORT" ;;
        webserver) http_ok "$UI_PORT" ;;
        webserver-read-only) http_ok "$READ_ONLY_PORT" ;;
        daemon) exec dagster-daemon liveness-check ;;  # imports dagster: ~2 s of CPU
        *) exit 0 ;;  # a one-off command: healthy while it runs
    esac
}

role=${1:-help}
[ $# -gt 0 ] && shift
case "$role" in
    code-server)
        exec dagster code-server start -m pd_pipeline.definitions --location-name pd_pipeline \
            -h "$LISTEN" -p "$CODE_PORT" "$@" ;;
    webserver)
        exec dagster-webserver -w "$WORKSPACE" -h "$LISTEN" -p "$UI_PORT" "$@" ;;
    webserver-read-only)
        exec dagster-webserver -w "$WORKSPACE" -h "$LISTEN" -p "$READ_ONLY_PORT" --read-only "$@" ;;
    daemon)
        exec dagster-daemon run -w "$WORKSPACE" "$@" ;;
    healthcheck)
        healthcheck ;;
    help | --help | -h)
        usage ;;
    *)
        exec "$role" "$@" ;;
esac
