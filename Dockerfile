# syntax=docker/dockerfile:1
# envspec: the CLI, and the Argo CD config management plugin sidecar (deploy/argocd/). Argo CD mounts
# its own argocd-cmp-server into the sidecar and runs it as the command; the image only needs envspec
# and a shell. Built for pull requests and pushed for tags by .github/workflows/image.yml.
#
#   docker build -t envspec .
#   docker build --build-arg WITH_KUBE_TOOLS=true -t envspec:kube-tools .   # adds kubectl and helm
#
# Every stage starts from the same base, python:3.12-slim pinned by the digest of its image index;
# bump the tag and the digest together. kubectl and helm are the linux/amd64 builds (the image
# workflow builds linux/amd64); their checksums are those of the official release binaries.

# --- wheel: build envspec's wheel with a hash-locked build backend ------------------------------------
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY deploy/image/build.lock /tmp/build.lock
RUN pip install --require-hashes --only-binary=:all: -r /tmp/build.lock
COPY pyproject.toml README.md LICENSE ./
COPY envspec ./envspec
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /dist .

# --- venv: the runtime dependencies from the hash lock, then envspec from the wheel (no resolver) -----
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements/deploy.txt /tmp/requirements.txt
RUN python -m venv /opt/envspec \
 && /opt/envspec/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.txt
COPY --from=wheel /dist/ /tmp/dist/
RUN /opt/envspec/bin/pip install --no-deps --no-index /tmp/dist/envspec-*.whl \
 && /opt/envspec/bin/envspec --version

# --- kube-tools: kubectl and helm, only when the build asks (WITH_KUBE_TOOLS=true), checksum-verified --
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea AS kube-tools
ARG WITH_KUBE_TOOLS=false
ARG KUBECTL_VERSION=1.32.3
ARG KUBECTL_SHA256=ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f
ARG HELM_VERSION=3.17.2
ARG HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
COPY deploy/image/fetch-tool.py /usr/local/bin/fetch-tool
RUN mkdir -p /out \
 && if [ "$WITH_KUBE_TOOLS" = "true" ]; then \
      python /usr/local/bin/fetch-tool "https://dl.k8s.io/v${KUBECTL_VERSION}/bin/linux/amd64/kubectl" \
        "$KUBECTL_SHA256" /out/kubectl \
   && python /usr/local/bin/fetch-tool "https://get.helm.sh/helm-v${HELM_VERSION}-linux-amd64.tar.gz" \
        "$HELM_SHA256" /out/helm --member linux-amd64/helm ; \
    fi

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
LABEL org.opencontainers.image.title="envspec" \
      org.opencontainers.image.description="Declarative compiler and deployer for Kubernetes environments" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid/gid 999: what Argo CD runs its CMP sidecars as (runAsUser: 999 in deploy/argocd/repo-server).
RUN groupadd --gid 999 envspec \
 && useradd --uid 999 --gid 999 --home-dir /home/envspec --create-home --shell /bin/sh envspec
COPY --from=venv /opt/envspec /opt/envspec
COPY --from=kube-tools /out/ /usr/local/bin/
ENV PATH=/opt/envspec/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 999:999
WORKDIR /home/envspec
ENTRYPOINT ["envspec"]
CMD ["--help"]
