# syntax=docker/dockerfile:1
# The one CALI image: the Ray head, the Ray workers (pipeline actors, Serve apps) and the Ray jobs.
# python:3.11-slim with the exact versions CI tested (docker/constraints.txt, docker/freeze.py).
# Build: docker build -t cali:dev .    Smoke test: docker run --rm cali:dev cali --help

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers for any dependency that ships no wheel for this platform; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU build of torch (for the optional MiniLM embedder): PyPI's default wheel bundles CUDA (GBs).
ARG TORCH_VERSION=2.13.0
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"
COPY docker/constraints.txt /tmp/constraints.txt
RUN pip install -r /tmp/constraints.txt
# `cali` command; the code itself runs from /app (PYTHONPATH), where knowledge/ sits beside it.
RUN printf '#!/opt/venv/bin/python\nfrom cali.cli import app\napp()\n' > /opt/venv/bin/cali \
    && chmod 0755 /opt/venv/bin/cali

# The console's front-end libraries (chart.js, alpinejs, pico), from npm at build time, served by the
# console app from the image: no CDN (cali/console/package-lock.json pins them).
FROM node:20-bookworm-slim AS console
COPY cali/console/package.json cali/console/package-lock.json /console/
RUN cd /console && npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    CALI_CONSOLE_ASSETS=/opt/console/node_modules \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0
# ca-certificates: TLS to AWS, Slack, the LLM and ElastiCache (RAY_REDIS_CA_CERT). KubeRay starts Ray with
# `bash -lc`, whose /etc/profile resets PATH: profile.d puts the venv back in front.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'export PATH=/opt/venv/bin:$PATH' > /etc/profile.d/cali-venv.sh \
    && groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash ray
COPY --from=build /opt/venv /opt/venv
COPY --from=console /console/node_modules /opt/console/node_modules
# .dockerignore admits only cali/, knowledge/, jobs/ and the packaging files.
COPY . /app
WORKDIR /app
USER 1000:1000
CMD ["cali", "--help"]
