# helios4: Kobol Helios4 NAS (Marvell Armada 388, dual Cortex-A9, armhf, 2 GB).
# 32-bit: one LMDB map gets at most about 1 GiB of address space. The Armada
# 38x has a CESA engine but no AES instructions: TLS prefers ChaCha20-Poly1305.
# Build and test: make deps BOARD=helios4 && make test BOARD=helios4   (tests under qemu-arm)
BOARD_ARCH     = armhf
BOARD_TRIPLET  = arm-linux-gnueabihf
BOARD_CFLAGS   = -mcpu=cortex-a9 -mfpu=vfpv3-d16 -Wno-psabi -D_FILE_OFFSET_BITS=64
# The Armada 388 has NEON, Debian's armhf baseline does not: only the NEON
# ChaCha20 and FEC kernels are built with it, and used when AT_HWCAP has NEON.
BOARD_NEON_CFLAGS = -mfpu=neon
BOARD_APT      = g++-arm-linux-gnueabihf qemu-user libuv1-dev:armhf liblmdb-dev:armhf libmbedtls-dev:armhf libcjson-dev:armhf libgtest-dev:armhf libstdc++6:armhf
BOARD_RUN      = qemu-arm
BOARD_TIMEOUT_MULT = 10
BOARD_RAM_MB   = 2048

LIMIT_max_connections      = 128
LIMIT_control_max_clients  = 16
LIMIT_lmdb_map_bytes       = 268435456
LIMIT_lmdb_map_max_bytes   = 1073741824
LIMIT_task_history         = 500
LIMIT_tasks_max_active     = 32
LIMIT_threadpool           = 2
LIMIT_tls_prefer_chacha    = 1
LIMIT_store_max_mutable_share_bytes = 134217728
# 32-bit glibc maps nothing below 512 KiB on its own at most.
LIMIT_malloc_mmap_threshold_bytes = 524288

# Watchdog and status LED (docs/boards.md; cairn.json "hardware" overrides).
# orion_wdt of the Armada 388; the front panel's green status LED.
HW_watchdog             = /dev/watchdog
HW_watchdog_interval_ms = 5000
HW_led                  = helios4:green:status
