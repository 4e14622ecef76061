# sampo in a container: build with the same Debian packages and commands as
# CI (scripts/install-deps.sh, then cargo build --release --locked), run as
# an unprivileged user.
#
#   docker build -t sampo .
#   docker run --rm sampo --help
#   docker run --rm sampo check /opt/sampo/configs/quickstart.toml
#   # your own spec, output written to the current directory:
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" sampo run spec.toml
#   # two MPI ranks inside one container:
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" --entrypoint mpiexec \
#       sampo -n 2 --bind-to none sampo run spec.toml
#
# Apptainer/Singularity on a cluster: `apptainer build sampo.sif docker-daemon://sampo:latest`.
# For runs across nodes, prefer a native build against the site's MPI (docs/install.md,
# "On a cluster"): an MPI inside a container must match the host's launcher.

# ---- build stage ---------------------------------------------------------------
FROM debian:bookworm AS build

ARG DEBIAN_FRONTEND=noninteractive
# curl and CA certificates to fetch rustup.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# The system libraries sampo builds against, from the same script CI and
# scripts/quickstart.sh use (copied alone first, so this layer is cached
# until the script changes).
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*

# Rust with rustup, the official installer (pipefail: a failed download must
# fail the build, not feed an empty script to sh).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# RUST_TOOLCHAIN may pin a version: docker build --build-arg RUST_TOOLCHAIN=1.87.0 .
# (Cargo.lock's dependencies need >= 1.87: nalgebra 0.34.2 declares
# rust-version 1.87, above the 1.85 in Cargo.toml.)
ARG RUST_TOOLCHAIN=stable
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "$RUST_TOOLCHAIN" \
    && cargo --version

# The sources (see .dockerignore for what is left out), then the build.
WORKDIR /src
COPY . .
RUN cargo build --release --locked
# The man pages (`man sampo`, `man sampo-run`, ...), copied into the runtime image.
RUN bash scripts/install-man.sh target/release/sampo /src/man/man1

# ---- runtime stage -------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

ARG DEBIAN_FRONTEND=noninteractive
# Only what the binary loads at run time: HDF5 1.10 and OpenMPI (libraries,
# plus openmpi-bin for mpiexec), and Python 3.11 with numpy for Python models.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhdf5-103-1 libopenmpi3 openmpi-bin \
       libpython3.11 python3-numpy \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/target/release/sampo /usr/local/bin/sampo
COPY --from=build /src/man/man1 /usr/local/share/man/man1
# The example specs (and their data), for a first try.
COPY --from=build /src/configs /opt/sampo/configs

# OpenMPI's shared-memory transport uses cross-memory attach (CMA), which the
# default container seccomp/ptrace policy forbids; use copy-in/copy-out.
ENV OMPI_MCA_btl_vader_single_copy_mechanism=none

# Run as an unprivileged user; /work is where specs are read and outputs
# written (mount your directory there).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin sampo \
    && mkdir -p /work && chown sampo:sampo /work
USER sampo
WORKDIR /work

ENTRYPOINT ["sampo"]
CMD ["--help"]
