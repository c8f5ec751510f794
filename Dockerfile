# driftline worker image.
#   docker build -t driftline:0.1.0 .
#   docker run --rm -e DRIFTLINE_KAFKA_BOOTSTRAP=... -e DRIFTLINE_REDIS_URL=... driftline:0.1.0
# Configuration comes only from DRIFTLINE_* environment variables (streams/settings.py).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the package (runtime dependencies only, no dev/test extras), then drop
# the sources so the installed package is the only `streams` on the path.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams/ streams/
COPY detectors/ detectors/
RUN pip install . \
    && cd / \
    && rm -rf /src

# Run as an unprivileged user; its home is the working directory, where the
# worker may keep local data.
RUN groupadd --system --gid 10001 driftline \
    && useradd --system --uid 10001 --gid driftline \
        --home-dir /var/lib/driftline --create-home --shell /usr/sbin/nologin driftline
WORKDIR /var/lib/driftline
USER 10001:10001

ENTRYPOINT ["driftline"]
CMD ["worker"]
