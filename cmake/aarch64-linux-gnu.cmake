# Cross-compiling for arm64 (aarch64) Linux with Debian's cross toolchain:
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DVGPU_BUILD_TESTS=OFF
# scripts/release uses it. The assembler is the C compiler, as for a native build.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(VGPU_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${VGPU_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${VGPU_CROSS_TRIPLE}-gcc)
# Libraries and headers from the target's sysroot only; programs (none needed) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${VGPU_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config must find arm64 libraries only: the host's x86-64 ones would put the host's headers
# in an arm64 build. Where the arm64 -dev packages are absent, the daemon and CLI are skipped.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
