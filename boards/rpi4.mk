# rpi4: Raspberry Pi 4 (BCM2711, Cortex-A72, arm64, 1-8 GB). The A72 here has
# no ARMv8 crypto extensions, so TLS prefers ChaCha20-Poly1305.
# Build and test: make deps BOARD=rpi4 && make test BOARD=rpi4   (tests under qemu-aarch64)
BOARD_ARCH     = arm64
BOARD_TRIPLET  = aarch64-linux-gnu
BOARD_CFLAGS   = -mcpu=cortex-a72
BOARD_APT      = g++-aarch64-linux-gnu qemu-user libuv1-dev:arm64 liblmdb-dev:arm64 libmbedtls-dev:arm64 libcjson-dev:arm64 libgtest-dev:arm64 libstdc++6:arm64
BOARD_RUN      = qemu-aarch64
BOARD_TIMEOUT_MULT = 10
BOARD_RAM_MB   = 1024

LIMIT_max_connections      = 128
LIMIT_control_max_clients  = 16
LIMIT_lmdb_map_max_bytes   = 68719476736
LIMIT_tls_prefer_chacha    = 1

# Watchdog and status LED (docs/boards.md; cairn.json "hardware" overrides).
# bcm2835-wdt (dtparam=watchdog=on); the green activity LED.
HW_watchdog             = /dev/watchdog
HW_watchdog_interval_ms = 5000
HW_led                  = ACT
