# Dockerfile - the vgpu node image (vgpu/node:<version>): the node daemon vgpu-hypervisor (with
# the Kubernetes device plugin), the CLI vgpu, the limiter libraries and vgpu-node-agent, which
# installs the libraries onto the host and then becomes the daemon.
#
# Why this exists: deploy/kubernetes runs this image as a DaemonSet on every GPU node. Built
# with scripts/image (docker, podman or buildah); tests/deploy/image_test.sh (CTest
# deploy_image) checks that the packages named here exist in Debian, match scripts/install-deps
# and hold every library the binaries built from this tree need.
#
# Two stages: "build" has the compilers and -dev packages; the image itself is bookworm-slim
# with only the runtime libraries. No BuildKit-only syntax, so any of the three builders works.

FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# the daemon and the CLI (as in scripts/install-deps): HTTP server and client, JSON, INI;
# the device plugin: gRPC's C core, protobuf-c and its compiler protoc-c
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        cmake \
        pkg-config \
        libmicrohttpd-dev \
        libjansson-dev \
        libinih-dev \
        libcurl4-openssl-dev \
        libgrpc-dev \
        libprotobuf-c-dev \
        protobuf-c-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake ./cmake
COPY src ./src
COPY bench ./bench
COPY scripts/check-elf ./scripts/check-elf
# Release, no tests (as scripts/release builds); installed stripped under /stage/opt/vgpu. The
# injected libraries are held to the glibc floor as scripts/release holds them (GLIBC_FLOOR there,
# src/limiter/glibc_floor.h): pods load them from this image, whatever glibc their images have.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DVGPU_BUILD_TESTS=OFF -DVGPU_SANITIZE=OFF \
        -DVGPU_WERROR=OFF \
    && cmake --build /build -j"$(nproc)" \
    && cmake --install /build --strip --prefix /stage/opt/vgpu \
    && test -x /stage/opt/vgpu/bin/vgpu-hypervisor \
    && test -x /stage/opt/vgpu/bin/vgpu \
    && test -f /stage/opt/vgpu/lib/libcuda_limiter.so \
    && test -f /stage/opt/vgpu/lib/libadd_path.so \
    && case "$(dpkg --print-architecture)" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) arch= ;; esac \
    && if [ -n "$arch" ]; then \
        scripts/check-elf --libc-only --no-exports --max-glibc 2.17 "$arch" \
            /stage/opt/vgpu/lib/libadd_path.so \
        && scripts/check-elf --libc-only --max-glibc 2.17 "$arch" \
            /stage/opt/vgpu/lib/libcuda_limiter.so; \
    else echo "check-elf knows no $(dpkg --print-architecture): glibc floor not checked"; fi \
    && { ldd /stage/opt/vgpu/bin/vgpu-hypervisor | grep -q 'libgrpc\.so' \
        || { echo "vgpu-hypervisor was built without the device plugin (gRPC)" >&2; exit 1; }; } \
    && /stage/opt/vgpu/bin/vgpu-hypervisor --version | sed -n 's/^vgpu-hypervisor //p' \
        >/stage/opt/vgpu/VERSION \
    && grep -Eq '^[0-9][0-9A-Za-z.+-]*$' /stage/opt/vgpu/VERSION

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
LABEL org.opencontainers.image.title="vgpu node" \
      org.opencontainers.image.description="vgpu-hypervisor (node daemon and device plugin), vgpu, the limiter libraries and vgpu-node-agent" \
      org.opencontainers.image.source="https://github.com/vgpu/vgpu"
# runtime libraries only: libmicrohttpd, jansson, inih, libcurl (the daemon and the CLI);
# libgrpc29 (libgrpc.so.29 of gRPC 1.51) and libprotobuf-c1 (the device plugin). No
# ca-certificates: the Kubernetes watch trusts the service account's ca.crt, nothing else.
# vgpu-node-agent needs bash, coreutils, diffutils (cmp) and util-linux (flock): all in the base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libmicrohttpd12 \
        libjansson4 \
        libinih1 \
        libcurl4 \
        libgrpc29 \
        libprotobuf-c1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /stage/opt/vgpu/bin/vgpu-hypervisor /stage/opt/vgpu/bin/vgpu /usr/local/bin/
COPY --from=build /stage/opt/vgpu/lib/libcuda_limiter.so /stage/opt/vgpu/lib/libadd_path.so /opt/vgpu/lib/
COPY --from=build /stage/opt/vgpu/VERSION /opt/vgpu/VERSION
COPY scripts/vgpu-node-agent /usr/local/bin/vgpu-node-agent
# every library resolves here (not only in the build stage), and everything starts
RUN chmod 0755 /usr/local/bin/vgpu-node-agent \
    && chmod 0644 /opt/vgpu/lib/libcuda_limiter.so /opt/vgpu/lib/libadd_path.so \
    && if ldd /usr/local/bin/vgpu-hypervisor /usr/local/bin/vgpu | grep 'not found'; then \
        echo "a library the binaries need is missing from this stage" >&2; exit 1; fi \
    && vgpu-hypervisor --version && vgpu --help >/dev/null && vgpu-node-agent --help 2>/dev/null \
    && for t in bash flock cmp sha256sum mktemp sync; do command -v "$t" >/dev/null || exit 1; done
# Root, and it cannot be otherwise: the daemon makes and owns the pods' files under
# /run/vgpu/shm, chowns each pod's ledger to the pod's user and reads other users' /proc
# entries; the agent writes the host's /usr/local/vgpu (docs/security.md, "The daemon's
# privileges"). The DaemonSet drops every capability but the few it needs.
USER 0:0
ENTRYPOINT ["/usr/local/bin/vgpu-node-agent"]
CMD ["--host-lib-dir", "/host/usr/local/vgpu", "--", "vgpu-hypervisor", "--config", "/etc/vgpu/vgpu.ini"]
